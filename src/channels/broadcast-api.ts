import type { IncomingMessage, ServerResponse } from 'node:http';
import { ZenError } from '../errors.js';
import { ALL_CHANNEL, CHANNEL_RE } from '../protocol/frames.js';
import type { Identity } from '../auth/grants.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { AuditSink } from '../audit/audit-sink.js';
import { checkGrant, identify } from '../http/guard.js';
import { parseBody, readBody, reply, replyError } from '../http/respond.js';
import type { RouteHandler } from '../http/router.js';
import type { Hub } from './hub.js';

/**
 * `POST /api/broadcast`: body `{"channel", "data"}` (JSON, or MessagePack with
 * `Content-Type: application/msgpack`), Bearer token with `publish` (`*` needs
 * `broadcast`) → 200 `{"id","count"}` once the audit rows are durable.
 *
 * 507 `audit full` while the audit storage is past `--audit-max-bytes`. A refused
 * request (401, 403, 400, 413, 503) is recorded in the audit trail as a
 * WebSocket refusal is: an `in` `broadcast` row (the token's user, the channel and data
 * as far as they were read) and an `out` `error` row with the message.
 */
export function broadcastApi(hub: Hub, verifier: TokenVerifier, maxBodyBytes: number, audit: AuditSink): RouteHandler {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    let identity: Identity | null = null;
    let channel: string | null = null;
    let data: unknown = null;
    try {
      identity = await identify(req, url, verifier);
      checkGrant(identity, 'publish');
      const { value: body, hasBinary } = parseBody(req, await readBody(req, maxBodyBytes));
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ZenError('ERR_HTTP_BAD_REQUEST', 'body must be an object {"channel","data"}');
      const fields = body as { channel?: unknown; data?: unknown };
      data = fields.data ?? null;
      if (typeof fields.channel !== 'string') throw new ZenError('ERR_HTTP_BAD_REQUEST', 'missing channel');
      if (fields.channel !== ALL_CHANNEL && !CHANNEL_RE.test(fields.channel)) throw new ZenError('ERR_HTTP_BAD_REQUEST', 'invalid channel');
      channel = fields.channel;
      if (fields.data === undefined) throw new ZenError('ERR_HTTP_BAD_REQUEST', 'missing data');
      const r = hub.broadcast(null, identity, channel, fields.data, (result) => reply(req, res, 200, result), hasBinary);
      if (r === 'forbidden') throw new ZenError('ERR_AUTH_FORBIDDEN', 'broadcast');
      if (r === 'not subscribed') throw new ZenError('ERR_AUTH_FORBIDDEN', 'publish');
      if (r === 'bus unavailable') throw new ZenError('ERR_BUS_UNAVAILABLE');
      if (r === 'audit full') throw new ZenError('ERR_AUDIT_FULL');
    } catch (err) {
      const e = err instanceof ZenError ? err : new ZenError('ERR_HTTP_BAD_REQUEST', String(err));
      // The storage is full: counted in the audit's `audit.resumed` row, not recorded one by one.
      if (e.code === 'ERR_AUDIT_FULL') {
        replyError(req, res, e);
        return;
      }
      const at = new Date();
      const userId = identity?.userId ?? null;
      audit.record({ messageId: null, at, sessionId: null, userId, direction: 'in', type: 'broadcast', channel, payload: data, recipients: null });
      audit.record({ messageId: null, at, sessionId: null, userId, direction: 'out', type: 'error', channel, payload: [e.message], recipients: 1 });
      replyError(req, res, e);
    }
  };
}
