import type { Pool } from 'pg';
import { AUDIT_BULK_TYPES, auditMessageWindow } from './store.js';
import type { AuditQuery, AuditRecord } from './store.js';
import { auditRecordOf, type AuditDbRow as AuditDbRowOf } from './audit-row.js';

/**
 * The audit table on PostgreSQL: the batch insert, the reads (the `GET /api/audit`
 * query and a channel's events by position) and the retention's delete and size.
 * PostgresStore (postgres-store.ts) calls these with its pool's getter (which throws when
 * the store is not open), called where the method called it.
 */

type AuditDbRow = AuditDbRowOf<Date>;

/** An audit row as the store reads it. */
function recordOf(r: AuditDbRow): AuditRecord {
  return auditRecordOf(r, r.at);
}

export async function writeAuditRows(db: () => Pool, rows: readonly AuditRecord[]): Promise<void> {
  if (rows.length === 0) return;
  // One statement is one transaction: a single round trip per batch. Named: parsed and
  // planned once per connection, not at every commit.
  await db().query({
    name: 'zenconn_audit_insert_v3',
    text: `INSERT INTO audit (id, message_id, at, server_id, session_id, user_id, direction, type, channel, payload, payload_bin, recipients, event_offset, event_epoch)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
                          $8::text[], $9::text[], $10::jsonb[], $11::bytea[], $12::int[], $13::bigint[], $14::text[])
     ON CONFLICT (id) DO NOTHING`,
    values: [
      rows.map((r) => r.id),
      rows.map((r) => r.messageId),
      rows.map((r) => r.at.toISOString()),
      rows.map((r) => r.serverId),
      rows.map((r) => r.sessionId),
      rows.map((r) => r.userId),
      rows.map((r) => r.direction),
      rows.map((r) => r.type),
      rows.map((r) => r.channel),
      rows.map((r) => r.payload),
      rows.map((r) => (r.payloadBin === null ? null : Buffer.from(r.payloadBin.buffer, r.payloadBin.byteOffset, r.payloadBin.byteLength))),
      rows.map((r) => r.recipients),
      rows.map((r) => r.eventOffset ?? null),
      rows.map((r) => r.eventEpoch ?? null)
    ]
  });
}

export async function readAuditEvents(db: () => Pool, channel: string, epoch: string, after: number, limit: number): Promise<AuditRecord[]> {
  const { rows } = await db().query<AuditDbRow & { event_offset: string; event_epoch: string }>(
    `SELECT id, message_id, at, server_id, session_id, user_id, direction, type, channel, payload::text AS payload, payload_bin, recipients, event_offset, event_epoch
       FROM audit WHERE channel = $1 AND event_epoch = $2 AND event_offset > $3 AND event_offset IS NOT NULL
      ORDER BY event_offset LIMIT $4`,
    [channel, epoch, after, Math.max(0, Math.floor(limit))]
  );
  return rows.map((r) => ({ ...recordOf(r), eventOffset: Number(r.event_offset), eventEpoch: r.event_epoch }));
}

export async function queryAuditRows(db: () => Pool, q: AuditQuery): Promise<AuditRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const eq = (column: string, value: string | null): void => {
    if (value !== null) where.push(`${column} = ${add(value)}`);
  };
  eq('channel', q.channel);
  eq('session_id', q.sessionId);
  eq('user_id', q.userId);
  eq('type', q.type);
  eq('direction', q.direction);
  eq('message_id', q.messageId);
  if (q.type !== null && !(AUDIT_BULK_TYPES as readonly string[]).includes(q.type)) where.push(`type NOT IN ('broadcast', 'event')`);
  const window = q.messageId === null ? null : auditMessageWindow(q.messageId);
  if (window !== null) where.push(`at >= ${add(window.from.toISOString())}::timestamptz AND at < ${add(window.to.toISOString())}::timestamptz`);
  if (q.since !== null) where.push(`at >= ${add(q.since.toISOString())}::timestamptz`);
  if (q.until !== null) where.push(`at < ${add(q.until.toISOString())}::timestamptz`);
  const desc = q.order === 'desc';
  if (q.after !== null) {
    where.push(`(at, id) ${desc ? '<' : '>'} (${add(q.after.at.toISOString())}::timestamptz, ${add(q.after.id)})`);
  }
  const dir = desc ? 'DESC' : 'ASC';
  const { rows } = await db().query<AuditDbRow>(
    `SELECT id, message_id, at, server_id, session_id, user_id, direction, type, channel, payload::text AS payload, payload_bin, recipients
       FROM audit ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''}
      ORDER BY at ${dir}, id ${dir} LIMIT ${add(Math.max(0, Math.floor(q.limit)))}`,
    params
  );
  return rows.map(recordOf);
}

export async function deleteAuditRowsBefore(db: () => Pool, before: Date, limit: number): Promise<number> {
  const { rowCount } = await db().query(
    `DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY at LIMIT $2)`,
    [before.toISOString(), Math.max(0, Math.floor(limit))]
  );
  return rowCount ?? 0;
}

export async function auditTableBytes(db: () => Pool): Promise<number> {
  const { rows } = await db().query<{ live: number; row_bytes: number; total: number; heap: number }>(
    `SELECT coalesce((SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = 'audit'::regclass), 0)::float8 AS live,
            coalesce((SELECT avg(pg_column_size(a.*)) FROM (SELECT * FROM audit ORDER BY at DESC LIMIT 1000) a), 0)::float8 AS row_bytes,
            pg_total_relation_size('audit')::float8 AS total, pg_relation_size('audit')::float8 AS heap`
  );
  const r = rows[0]!;
  const withIndexes = r.heap > 0 ? r.total / r.heap : 1;
  return Math.round(Math.min(r.total, r.live * r.row_bytes * withIndexes));
}
