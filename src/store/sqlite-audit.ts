import type Database from 'better-sqlite3';
import { AUDIT_BULK_TYPES, auditMessageWindow } from './store.js';
import type { AuditQuery, AuditRecord } from './store.js';
import { auditRecordOf, type AuditDbRow as AuditDbRowOf } from './audit-row.js';

/**
 * The audit table on SQLite: the write and delete statements (shared with the audit
 * writer's worker thread) and the reads (the `GET /api/audit` query and a channel's
 * events by position). SqliteStore (sqlite-store.ts) calls these on its connection.
 */

type AuditDbRow = AuditDbRowOf<string>;

/** An audit row as the store reads it. */
function recordOf(r: AuditDbRow): AuditRecord {
  return auditRecordOf(r, new Date(r.at));
}

/** ISO-8601, UTC, milliseconds: the on-disk timestamp format (it sorts as text). */
export function iso(at: Date): string {
  return at.toISOString();
}

/** The WHERE clause (with its parameters) and ORDER BY of an audit query; shared shape with the PostgreSQL backend. */
function auditSql(q: AuditQuery): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const eq = (column: string, value: string | null): void => {
    if (value === null) return;
    where.push(`${column} = ?`);
    params.push(value);
  };
  eq('channel', q.channel);
  eq('session_id', q.sessionId);
  eq('user_id', q.userId);
  eq('type', q.type);
  eq('direction', q.direction);
  eq('message_id', q.messageId);
  if (q.type !== null && !(AUDIT_BULK_TYPES as readonly string[]).includes(q.type)) where.push(`type NOT IN ('broadcast', 'event')`);
  const window = q.messageId === null ? null : auditMessageWindow(q.messageId);
  if (window !== null) {
    where.push('at >= ? AND at < ?');
    params.push(iso(window.from), iso(window.to));
  }
  if (q.since !== null) {
    where.push('at >= ?');
    params.push(iso(q.since));
  }
  if (q.until !== null) {
    where.push('at < ?');
    params.push(iso(q.until));
  }
  const desc = q.order === 'desc';
  if (q.after !== null) {
    where.push(desc ? '(at, id) < (?, ?)' : '(at, id) > (?, ?)');
    params.push(iso(q.after.at), q.after.id);
  }
  params.push(Math.max(0, Math.floor(q.limit)));
  const dir = desc ? 'DESC' : 'ASC';
  const sql =
    `SELECT id, message_id, at, server_id, session_id, user_id, direction, type, channel, payload, payload_bin, recipients
       FROM audit ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''}
      ORDER BY at ${dir}, id ${dir} LIMIT ?`;
  return { sql, params };
}

/** What writes and deletes audit rows on a connection. */
export interface AuditWriteStatements {
  /** Inserts the rows in one transaction, skipping ids that exist. */
  write(rows: readonly AuditRecord[]): void;
  /** Deletes at most `limit` of the oldest rows with `at < before`; returns how many. */
  deleteBefore(before: Date, limit: number): number;
}

/**
 * The audit write statements of a connection: used by {@link SqliteStore} and by the
 * audit writer's own connection in a worker thread (src/store/sqlite-audit-thread.ts),
 * so the SQL lives in one place.
 */
export function auditWriteStatements(db: Database.Database): AuditWriteStatements {
  const insert = db.prepare(
    `INSERT INTO audit (id, message_id, at, server_id, session_id, user_id, direction, type, channel, payload, payload_bin, recipients, event_offset, event_epoch)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
  );
  const del = db.prepare(`DELETE FROM audit WHERE rowid IN (SELECT rowid FROM audit WHERE at < ? ORDER BY at LIMIT ?)`);
  const blob = (b: Uint8Array | null): Buffer | null =>
    b === null || Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const write = db.transaction((rows: readonly AuditRecord[]): void => {
    for (const r of rows) {
      insert.run(r.id, r.messageId, iso(r.at), r.serverId, r.sessionId, r.userId, r.direction, r.type, r.channel, r.payload, blob(r.payloadBin), r.recipients, r.eventOffset ?? null, r.eventEpoch ?? null);
    }
  });
  return {
    write: (rows) => {
      if (rows.length > 0) write(rows);
    },
    deleteBefore: (before, limit) => del.run(iso(before), Math.max(0, Math.floor(limit))).changes
  };
}

/** A channel's events of `epoch` after offset `after`, by position, at most `limit` (Store.auditEvents). */
export function readAuditEvents(db: Database.Database, channel: string, epoch: string, after: number, limit: number): AuditRecord[] {
  const rows = db.prepare(
    `SELECT id, message_id, at, server_id, session_id, user_id, direction, type, channel, payload, payload_bin, recipients, event_offset, event_epoch
       FROM audit WHERE channel = ? AND event_epoch = ? AND event_offset > ? AND event_offset IS NOT NULL
      ORDER BY event_offset LIMIT ?`
  ).all(channel, epoch, after, Math.max(0, Math.floor(limit))) as Array<AuditDbRow & { event_offset: number; event_epoch: string }>;
  return rows.map((r) => ({ ...recordOf(r), eventOffset: r.event_offset, eventEpoch: r.event_epoch }));
}

/** The rows of an audit query (Store.queryAudit); `cache` keeps the prepared statement of each filter combination. */
export function queryAuditRows(db: Database.Database, cache: Map<string, Database.Statement>, q: AuditQuery): AuditRecord[] {
  const { sql, params } = auditSql(q);
  // A handful of filter combinations: better-sqlite3 caches nothing itself, so keep them.
  let stmt = cache.get(sql);
  if (stmt === undefined) {
    stmt = db.prepare(sql);
    if (cache.size < 256) cache.set(sql, stmt);
  }
  const rows = stmt.all(...params) as AuditDbRow[];
  return rows.map(recordOf);
}
