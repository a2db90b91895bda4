/**
 * The persistence seam. One interface, two backends beside it:
 * `sqlite-store.ts` (embedded, better-sqlite3 v12) and `postgres-store.ts` (pg).
 *
 * Contract:
 * - `open()` connects and runs the versioned migrations in `migrations/`; it rejects
 *   (with `ERR_STORE_UNREACHABLE`) when the database cannot be reached, so the caller
 *   can exit before binding a port.
 * - `writeBatch()` applies every row of the batch in ONE transaction, in order
 *   (opens before closes of the same batch). It is idempotent: replaying a batch that
 *   was already applied changes nothing (inserts use ON CONFLICT DO NOTHING, closes
 *   only fill columns still null). That is what lets the record writer retry and
 *   replay its disk spool after an outage without duplicates.
 * - `writeAudit()` inserts a batch of audit rows in ONE transaction, idempotent by row
 *   id (ON CONFLICT DO NOTHING), so the audit journal can be replayed any number of times.
 * - Methods reject on a lost connection; they never hang for longer than the
 *   backend's statement timeout. Durability: a resolved promise means committed.
 */
import type { ProtocolName } from '../protocol/codec.js';

/** The role a server instance plays; stored in `servers.role`. */
export type ServerRole = 'standalone' | 'agent' | 'worker';

/** A row of `servers`, as written when an instance starts. */
export interface ServerRecord {
  id: string;
  role: ServerRole;
  parentId: string | null;
  hostname: string;
  pid: number;
  /** The address clients reach it on, e.g. `http://0.0.0.0:8080`. */
  address: string;
  startedAt: Date;
}

/** Written when a session is accepted. */
export interface SessionOpenRecord {
  id: string;
  serverId: string;
  remoteAddr: string;
  userAgent: string | null;
  userId: string | null;
  protocol: ProtocolName;
  connectedAt: Date;
}

/** Written when a session ends, for whatever reason. */
export interface SessionCloseRecord {
  id: string;
  disconnectedAt: Date;
  closeCode: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

/** One transaction's worth of session records, in the order they happened. */
export interface RecordBatch {
  opens: SessionOpenRecord[];
  closes: SessionCloseRecord[];
}

/** What a close-out of dead servers changed. */
export interface CloseOutResult {
  servers: number;
  sessions: number;
}

/** A row of `servers` as read back (for status and tests). */
export interface ServerRow {
  id: string;
  role: ServerRole;
  parentId: string | null;
  hostname: string;
  pid: number;
  address: string;
  startedAt: Date;
  lastSeenAt: Date;
  stoppedAt: Date | null;
}

/**
 * One row of the `audit` table, in its stored form. The payload is already serialized
 * (by src/audit/audit-payload.ts): the store only moves text and bytes.
 */
export interface AuditRecord {
  /** The row's own id (UUID v7), fixed before the first write attempt: replays are idempotent by it. */
  id: string;
  /** The event id clients saw; shared by a broadcast's `in` row and its event's `out` row. */
  messageId: string | null;
  at: Date;
  serverId: string;
  sessionId: string | null;
  userId: string | null;
  /** `in`, `out` or `system`. */
  direction: string;
  type: string;
  channel: string | null;
  /** Sessions an `out` message went to. */
  recipients: number | null;
  /** The payload as JSON text (binary values as base64 strings, as JSON clients see them); null for none. */
  payload: string | null;
  /** The exact payload as MessagePack, only when the JSON text is not exact (binary values, …). */
  payloadBin: Uint8Array | null;
  /** An `out` `event` row's position on its channel (docs/architecture.md, Positions); absent/null otherwise. */
  eventOffset?: number | null;
  eventEpoch?: string | null;
}

/** A page of `audit`, newest first unless `order` is `asc`. Every filter is optional (null = any). */
export interface AuditQuery {
  /** `at >= since`. */
  since: Date | null;
  /** `at < until`. */
  until: Date | null;
  channel: string | null;
  sessionId: string | null;
  userId: string | null;
  type: string | null;
  direction: string | null;
  messageId: string | null;
  order: 'asc' | 'desc';
  /** Keyset position: rows strictly after this (at, id) in `order`. */
  after: { at: Date; id: string } | null;
  limit: number;
}

/** Row types left out of `audit_type_idx` (the bulk of the table); a query for another type repeats the index's condition. */
export const AUDIT_BULK_TYPES = ['broadcast', 'event'] as const;

/** How far from the time inside a message id its rows are looked for. */
const MESSAGE_WINDOW_MS = 60_000;

/**
 * The time range that holds the rows of a message: its id is a UUID v7, made in the same
 * millisecond as its rows' `at`, so a lookup by message id is a short range of
 * `audit_at_idx` instead of an index of its own on the hot rows. Null when the id is not
 * a UUID v7 (the lookup then reads the whole table).
 */
export function auditMessageWindow(messageId: string): { from: Date; to: Date } | null {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.exec(messageId);
  if (!m) return null;
  const ms = parseInt(m[1]! + m[2]!, 16);
  return { from: new Date(ms - MESSAGE_WINDOW_MS), to: new Date(ms + MESSAGE_WINDOW_MS) };
}

export interface Store {
  /** `sqlite` or `postgres`. */
  readonly kind: 'sqlite' | 'postgres';
  /** Connect and migrate. Rejects with a clear message when unreachable. */
  open(): Promise<void>;
  /** Insert the server's row (last_seen_at = startedAt, stopped_at null). */
  registerServer(record: ServerRecord): Promise<void>;
  /** Set `servers.address` (once the port is bound: with port 0 it is known only then). */
  setServerAddress(serverId: string, address: string): Promise<void>;
  /** Refresh `servers.last_seen_at`. */
  touchServer(serverId: string, at: Date): Promise<void>;
  /** Set `servers.stopped_at`. */
  stopServer(serverId: string, at: Date): Promise<void>;
  /**
   * Close out one server that is known to be gone: its sessions still open get
   * `disconnected_at = at` and `close_code = closeCode`, and the server `stopped_at = at`.
   * Returns the number of sessions closed.
   */
  closeOutServer(serverId: string, at: Date, closeCode: number): Promise<number>;
  /**
   * Close out every server with `stopped_at` null and `last_seen_at` before
   * `staleBefore` (a crashed instance), as `closeOutServer` does with code 1006.
   */
  closeOutStaleServers(staleBefore: Date, at: Date): Promise<CloseOutResult>;
  /** Apply a batch of session records in one transaction (idempotent). */
  writeBatch(batch: RecordBatch): Promise<void>;
  /** Insert audit rows in one transaction; rows whose id exists already are skipped. */
  writeAudit(rows: readonly AuditRecord[]): Promise<void>;
  /** One page of audit rows, ordered by (at, id). */
  queryAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /**
   * The `out` `event` rows of `channel` in `epoch` with offset > `after`, by offset, at
   * most `limit`: the history older than the hot window.
   */
  auditEvents(channel: string, epoch: string, after: number, limit: number): Promise<AuditRecord[]>;
  /** Delete at most `limit` of the oldest audit rows with `at < before`; returns how many went. */
  deleteAuditBefore(before: Date, limit: number): Promise<number>;
  /**
   * Bytes the audit trail takes in the database, for `--audit-max-bytes` (measured now and
   * then, never per message). SQLite: the database's pages in use, (page_count −
   * freelist_count) × page_size, so rows deleted by retention count as freed at once.
   * PostgreSQL: live rows (statistics) × the mean size of the newest rows, scaled by the
   * table's indexes, since the files themselves shrink only with VACUUM FULL.
   */
  auditBytes(): Promise<number>;
  /** Cheap reachability check for /readyz. Never rejects. */
  ping(): Promise<boolean>;
  /** Read servers back (status, tests). */
  listServers(): Promise<ServerRow[]>;
  /** Sessions still open (no `disconnected_at`), by server id (`zenconn status --cluster`). */
  openSessionsByServer(): Promise<Map<string, number>>;
  /** Release the connection(s). */
  close(): Promise<void>;
}

/**
 * Where the store layer logs (structured object first, then the message), so the
 * server can pass its pino logger as is. Every use is optional.
 */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
