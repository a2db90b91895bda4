/**
 * The audit journal: append-only ndjson files holding audit rows that are durable on
 * local disk but not (yet) in the database. One row per line, with the row's final id,
 * so replaying a file twice inserts nothing twice (`writeAudit` skips known ids):
 *
 *   {"id":"…","message_id":"…","at":"2026-…Z","server_id":"…","session_id":"…","user_id":null,
 *    "direction":"in","type":"broadcast","channel":"news","recipients":null,"payload_bin":null,"payload":{"text":"hi"}}
 *
 * A file is named `audit-<db>-<server>.<pid>.ndjson`, where `<db>` is a short hash of the
 * database it belongs to (see {@link journalKey}): several servers with different
 * databases may share one journal folder, and a file is only ever replayed into its own
 * database. Claiming and replaying orphans is the durable journal's (store/durable/).
 *
 * Durability: a row is acknowledged once its line was handed to the kernel (`write(2)`
 * returned): it survives the process being killed (kill -9, a crash). An fdatasync
 * follows in the background, not waited for, so a power loss can take what was written
 * since the last one — the same promise as SQLite with `synchronous=NORMAL`.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { AuditRecord } from '../store/store.js';
import { auditColumns } from './audit-columns.js';
import { parseStoreUrl } from '../store/store-url.js';
import type { JournalCodec } from '../store/durable/journal-file.js';
import { claimOrphans, fileLabel, ownFilePath } from '../store/durable/journal-claim.js';

/**
 * A short, stable name for a database: a hash of the SQLite file's absolute path, or of
 * a PostgreSQL URL's user, host, port, database and options (the password left out).
 */
export function journalKey(databaseUrl: string): string {
  const where = parseStoreUrl(databaseUrl);
  let identity: string;
  if (where.kind === 'sqlite') {
    identity = `sqlite:${where.path}`;
  } else {
    const u = new URL(where.url);
    const options = u.searchParams.get('options') ?? '';
    identity = `postgres://${decodeURIComponent(u.username)}@${u.hostname}:${u.port || '5432'}${u.pathname}?${options}`;
  }
  return createHash('sha256').update(identity).digest('hex').slice(0, 12);
}

/**
 * The path of the journal file this process writes for `serverId`; `seq` > 0 names the
 * files that follow a rotation (`….r<seq>.ndjson`), so a new file never reuses the name
 * of one still on disk.
 */
export function ownJournalPath(dir: string, key: string, serverId: string, seq = 0): string {
  return ownFilePath(dir, `audit-${key}-${fileLabel(serverId)}`, seq);
}

/** Where rows the database refused for good are set aside (never replayed). */
export function rejectedPath(dir: string, key: string): string {
  return join(dir, `audit-${key}.rejected.ndjson`);
}

/** Encodes one row as a journal line, newline included. */
export function encodeJournalLine(r: AuditRecord): string {
  const head = JSON.stringify({
    ...auditColumns(r),
    recipients: r.recipients,
    payload_bin: r.payloadBin === null ? null : Buffer.from(r.payloadBin.buffer, r.payloadBin.byteOffset, r.payloadBin.byteLength).toString('base64'),
    // Only on a positioned event's row: the other lines stay as they were.
    ...(r.eventOffset != null ? { event_offset: r.eventOffset, event_epoch: r.eventEpoch ?? null } : {})
  });
  // The payload is spliced in as JSON, not as a string holding JSON: the file stays readable.
  return head.slice(0, -1) + ',"payload":' + (r.payload ?? 'null') + '}\n';
}

const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** Decodes one journal line (without its newline); throws on anything malformed. */
export function decodeJournalLine(line: string): AuditRecord {
  const o = JSON.parse(line) as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw new Error('journal line is not an object');
  const at = new Date(str(o.at) ? o.at : NaN);
  const recipients = o.recipients;
  if (
    !str(o.id) ||
    !strOrNull(o.message_id) ||
    Number.isNaN(at.getTime()) ||
    !str(o.server_id) ||
    !strOrNull(o.session_id) ||
    !strOrNull(o.user_id) ||
    !str(o.direction) ||
    !str(o.type) ||
    !strOrNull(o.channel) ||
    !(recipients === null || (typeof recipients === 'number' && Number.isSafeInteger(recipients))) ||
    !strOrNull(o.payload_bin)
  ) {
    throw new Error('bad journal line');
  }
  return {
    id: o.id,
    messageId: o.message_id,
    at,
    serverId: o.server_id,
    sessionId: o.session_id,
    userId: o.user_id,
    direction: o.direction,
    type: o.type,
    channel: o.channel,
    recipients,
    payload: o.payload === null || o.payload === undefined ? null : JSON.stringify(o.payload),
    payloadBin: o.payload_bin === null ? null : Buffer.from(o.payload_bin, 'base64'),
    ...(typeof o.event_offset === 'number' && Number.isSafeInteger(o.event_offset) && str(o.event_epoch) ? { eventOffset: o.event_offset, eventEpoch: o.event_epoch } : {})
  };
}

/** The audit journal's line format. */
export const auditJournalCodec: JournalCodec<AuditRecord> = { encode: encodeJournalLine, decode: decodeJournalLine };

/**
 * Claims the orphaned journal files of database `key` in `dir` (see durable/journal-claim.ts):
 * a file is only ever replayed into its own database.
 */
export function claimOrphanJournals(dir: string, key: string): string[] {
  const stem = new RegExp(`^audit-${key}-[A-Za-z0-9_-]+$`);
  return claimOrphans(dir, (s) => stem.test(s));
}
