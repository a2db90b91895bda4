import type { IncomingMessage, ServerResponse } from 'node:http';
import { ZenError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { RouteHandler } from '../http/router.js';
import { requireGrant, type OnRefused } from '../http/guard.js';
import { reply, replyError, wantsBinary } from '../http/respond.js';
import { decodeCursor, iterateAudit, parseFilter, parseLimit, queryPage, rowView, type AuditFilter } from './audit-query.js';

/** Rows per page when `limit` is not given. */
export const DEFAULT_PAGE_ROWS = 100;
/** Largest `limit` of a page. */
export const MAX_PAGE_ROWS = 1000;

function wantsNdjson(req: IncomingMessage): boolean {
  return /\bapplication\/x-ndjson\b/i.test(req.headers.accept ?? '');
}

/**
 * `GET /api/audit?since&until&channel&session&user&type&direction&message&order&limit&cursor`
 * with a bearer token holding the `audit` grant.
 *
 * - Default: one page, newest first (`order=asc` for oldest first), `limit` 1–1000
 *   (default 100): `{"rows":[{id, message_id, at, server_id, session_id, user_id,
 *   direction, type, channel, payload, recipients}, …], "next": "<cursor>" | null}`. Pass
 *   `cursor=<next>` with the same filters for the following page. With `X-Bin-Protocol`
 *   the answer is MessagePack and payloads are exact (binary values as bytes); in JSON
 *   they are as JSON clients saw them (binary values as base64 strings).
 * - `Accept: application/x-ndjson`: every matching row (up to `limit` when given), one
 *   JSON object per line, streamed page by page — an export.
 *
 * Errors: 400 bad filter or cursor, 401 no or bad token, 403 without `audit`, 503 when
 * the database cannot be read.
 */
export function auditApi(store: Store, verifier: TokenVerifier, onRefused?: OnRefused): RouteHandler {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    let filter: AuditFilter;
    let after: { at: Date; id: string } | null;
    let limit: number;
    const ndjson = wantsNdjson(req);
    try {
      await requireGrant(req, url, verifier, 'audit', onRefused);
      const q = url.searchParams;
      filter = parseFilter((name) => q.get(name));
      const cursor = q.get('cursor');
      after = cursor === null ? null : decodeCursor(cursor, filter.order);
      limit = ndjson ? parseLimit(q.get('limit'), 0, 0, Number.MAX_SAFE_INTEGER) : parseLimit(q.get('limit'), DEFAULT_PAGE_ROWS, 1, MAX_PAGE_ROWS);
    } catch (err) {
      replyError(req, res, err instanceof ZenError ? err : new ZenError('ERR_HTTP_BAD_REQUEST', String(err)));
      return;
    }
    if (ndjson) {
      await streamNdjson(req, res, store, filter, after, limit);
      return;
    }
    let page;
    try {
      page = await queryPage(store, filter, after, limit);
    } catch (err) {
      replyError(req, res, new ZenError('ERR_STORE_UNREACHABLE', 'audit', (err as Error).message));
      return;
    }
    const exact = wantsBinary(req);
    reply(req, res, 200, { rows: page.rows.map((r) => rowView(r, exact)), next: page.next });
  };
}

async function streamNdjson(
  req: IncomingMessage,
  res: ServerResponse,
  store: Store,
  filter: AuditFilter,
  after: { at: Date; id: string } | null,
  limit: number
): Promise<void> {
  const rows = iterateAudit(store, filter, limit, after);
  // Read the first page before the status line, so a database failure is still a 503.
  let first: IteratorResult<Awaited<ReturnType<typeof rows.next>>['value']>;
  try {
    first = await rows.next();
  } catch (err) {
    replyError(req, res, new ZenError('ERR_STORE_UNREACHABLE', 'audit', (err as Error).message));
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' });
  if (req.method === 'HEAD') {
    res.end();
    await rows.return(undefined);
    return;
  }
  let gone = false;
  res.once('close', () => {
    gone = true;
  });
  try {
    let next = first;
    let buffered = '';
    while (!next.done && !gone) {
      buffered += JSON.stringify(rowView(next.value, false)) + '\n';
      if (buffered.length >= 64 * 1024) {
        if (!res.write(buffered)) await new Promise<void>((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
        buffered = '';
      }
      next = await rows.next();
    }
    if (buffered !== '' && !gone) res.write(buffered);
    res.end();
  } catch {
    // The status line is out: cutting the stream is the only way left to say it failed.
    res.destroy();
  } finally {
    await rows.return(undefined);
  }
}
