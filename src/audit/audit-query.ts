/**
 * Reading the audit trail: the filters `zenconn audit` and `GET /api/audit` share, their
 * parsing, the opaque keyset cursor, and the row as both present it (keyed by the
 * `audit` table's column names).
 */
import { auditColumns } from './audit-columns.js';
import { ZenError } from '../errors.js';
import type { AuditQuery, AuditRecord, Store } from '../store/store.js';
import { decodePayload, payloadJsonView } from './audit-payload.js';
import { parseDurationMs } from './audit-retention.js';

/** The filters of one query (null = any). */
export interface AuditFilter {
  since: Date | null;
  until: Date | null;
  channel: string | null;
  sessionId: string | null;
  userId: string | null;
  type: string | null;
  direction: 'in' | 'out' | 'system' | null;
  messageId: string | null;
  /** Default `desc` (newest first). */
  order: 'asc' | 'desc';
}

/** The filter names, as CLI flags (`--since`) and query parameters (`?since=`). */
export const FILTER_NAMES = ['since', 'until', 'channel', 'session', 'user', 'type', 'direction', 'message', 'order'] as const;

/** One row as `--format json|ndjson` and the API present it: the `audit` table's columns. */
export interface AuditRowView {
  id: string;
  message_id: string | null;
  /** ISO-8601, UTC, milliseconds. */
  at: string;
  server_id: string;
  session_id: string | null;
  user_id: string | null;
  direction: string;
  type: string;
  channel: string | null;
  payload: unknown;
  recipients: number | null;
}

function bad(message: string): ZenError {
  return new ZenError('ERR_HTTP_BAD_REQUEST', message);
}

/**
 * An ISO-8601 time (`2026-11-27T06:30:00Z`, `2026-11-27`) or a time relative to `now`
 * (`15m`, `2h`, `7d`, `30s`, `500ms`: that long ago). Throws ERR_HTTP_BAD_REQUEST.
 */
export function parseTime(name: string, text: string, now: Date = new Date()): Date {
  const ago = parseDurationMs(text);
  if (ago !== null) return new Date(now.getTime() - ago);
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return new Date(t);
  }
  throw bad(`${name}: expected an ISO time (2026-01-31T12:00:00Z) or a duration ago (15m, 2h, 7d), got "${text}"`);
}

/**
 * Builds a filter from named values (`get('channel')` → the value or null), the same for
 * flags and query parameters. Throws ERR_HTTP_BAD_REQUEST naming the bad one.
 */
export function parseFilter(get: (name: (typeof FILTER_NAMES)[number]) => string | null, now: Date = new Date()): AuditFilter {
  const text = (name: (typeof FILTER_NAMES)[number], max = 200): string | null => {
    const v = get(name);
    if (v === null) return null;
    if (v === '' || v.length > max) throw bad(`${name}: expected 1 to ${max} characters`);
    return v;
  };
  const since = text('since');
  const until = text('until');
  const direction = text('direction');
  if (direction !== null && direction !== 'in' && direction !== 'out' && direction !== 'system') {
    throw bad(`direction: expected in, out or system, got "${direction}"`);
  }
  const order = text('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw bad(`order: expected asc or desc, got "${order}"`);
  return {
    since: since === null ? null : parseTime('since', since, now),
    until: until === null ? null : parseTime('until', until, now),
    channel: text('channel'),
    sessionId: text('session'),
    userId: text('user'),
    type: text('type'),
    direction,
    messageId: text('message'),
    order
  };
}

/** Parses a limit: an integer from `min` to `max`. */
export function parseLimit(text: string | null, fallback: number, min: number, max: number): number {
  if (text === null) return fallback;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw bad(`limit: expected an integer from ${min} to ${max}, got "${text}"`);
  return n;
}

/** The opaque cursor after `row` in `order` (base64url; its content is not a contract). */
export function encodeCursor(row: AuditRecord, order: 'asc' | 'desc'): string {
  return Buffer.from(JSON.stringify([order === 'asc' ? 'a' : 'd', row.at.toISOString(), row.id])).toString('base64url');
}

/** The position a cursor stands for; throws ERR_HTTP_BAD_REQUEST for a foreign or malformed one. */
export function decodeCursor(cursor: string, order: 'asc' | 'desc'): { at: Date; id: string } {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('cursor: malformed');
  }
  if (!Array.isArray(v) || v.length !== 3 || typeof v[1] !== 'string' || typeof v[2] !== 'string') throw bad('cursor: malformed');
  if (v[0] !== (order === 'asc' ? 'a' : 'd')) throw bad('cursor: it belongs to the other order');
  const at = new Date(v[1]);
  if (Number.isNaN(at.getTime())) throw bad('cursor: malformed');
  return { at, id: v[2] };
}

function toQuery(f: AuditFilter, after: { at: Date; id: string } | null, limit: number): AuditQuery {
  return {
    since: f.since,
    until: f.until,
    channel: f.channel,
    sessionId: f.sessionId,
    userId: f.userId,
    type: f.type,
    direction: f.direction,
    messageId: f.messageId,
    order: f.order,
    after,
    limit
  };
}

/** One page and the cursor of the next one (null when this is the last). */
export async function queryPage(
  store: Store,
  filter: AuditFilter,
  after: { at: Date; id: string } | null,
  limit: number
): Promise<{ rows: AuditRecord[]; next: string | null }> {
  const rows = await store.queryAudit(toQuery(filter, after, limit + 1));
  if (rows.length <= limit) return { rows, next: null };
  rows.length = limit;
  return { rows, next: encodeCursor(rows[limit - 1]!, filter.order) };
}

/** Every matching row (at most `limit`; 0 = no limit), read a page at a time. */
export async function* iterateAudit(
  store: Store,
  filter: AuditFilter,
  limit: number,
  after: { at: Date; id: string } | null = null,
  pageRows = 1000
): AsyncGenerator<AuditRecord> {
  let left = limit > 0 ? limit : Infinity;
  let position = after;
  while (left > 0) {
    const n = Math.min(pageRows, left);
    const rows = await store.queryAudit(toQuery(filter, position, n));
    for (const r of rows) yield r;
    left -= rows.length;
    if (rows.length < n) return;
    const last = rows[rows.length - 1]!;
    position = { at: last.at, id: last.id };
  }
}

/**
 * A row keyed by column name. `exact`: the payload as stored (binary values as bytes,
 * for MessagePack answers); otherwise as JSON clients saw it (binary as base64 strings).
 */
export function rowView(r: AuditRecord, exact: boolean): AuditRowView {
  return {
    ...auditColumns(r),
    payload: exact ? decodePayload(r.payload, r.payloadBin) : payloadJsonView(r.payload),
    recipients: r.recipients
  };
}
