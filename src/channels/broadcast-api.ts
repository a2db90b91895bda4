import type { IncomingMessage, ServerResponse } from 'node:http';
import { ZenError } from '../errors.js';
import { DecodeReason, MAX_DATA_DEPTH, validateClientFrame } from '../protocol/frames.js';
import type { Identity } from '../auth/grants.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { AuditSink } from '../audit/audit-sink.js';
import type { AuthFailures } from '../auth/auth-failures.js';
import { checkGrant, identify } from '../http/guard.js';
import { parseBody, readBody, reply, replyError } from '../http/respond.js';
import type { RouteHandler } from '../http/router.js';
import type { Hub } from './hub.js';

/**
 * `POST /api/broadcast`: body `{"channel", "data"}` (JSON, or MessagePack with
 * `Content-Type: application/msgpack`), Bearer token with `publish` (`*` needs
 * `broadcast`) → 200 `{"id","count"}` once the audit rows are durable.
 *
 * 507 `audit full` while the audit storage is past `--audit-max-bytes`.
 * The body is validated as a socket `broadcast` frame is (validateClientFrame: channel,
 * data, nesting), so every entry takes the same messages; one over the limits is refused
 * before anything is sent or recorded as delivered (400 `ERR_HTTP_DATA_TOO_DEEP`).
 * `maxBodyBytes` is the smaller of the HTTP body and the socket frame limits.
 * `authFailures` counts the refusals for the token or grant (the metrics).
 *
 * A refused request (401, 403, 400, 413, 503) is recorded in the audit trail as a
 * WebSocket refusal is: an `in` `broadcast` row (the token's user, the channel and data
 * as far as they were read; no data when it was too deep) and an `out` `error` row with
 * the message. The request is answered exactly once.
 */
export function broadcastApi(hub: Hub, verifier: TokenVerifier, maxBodyBytes: number, audit: AuditSink, authFailures?: AuthFailures): RouteHandler {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    let identity: Identity | null = null;
    let channel: string | null = null;
    let data: unknown = null;
    let answered = false;
    const answer = (send: () => void): void => {
      if (answered) return;
      answered = true;
      send();
    };
    try {
      identity = await identify(req, url, verifier);
      checkGrant(identity, 'publish');
      const { value: body, hasBinary } = parseBody(req, await readBody(req, maxBodyBytes));
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ZenError('ERR_HTTP_BAD_REQUEST', 'body must be an object {"channel","data"}');
      const fields = body as { channel?: unknown; data?: unknown };
      const frame = validateClientFrame({
        type: 'broadcast',
        channel: fields.channel,
        token: undefined,
        hasData: fields.data !== undefined,
        data: fields.data,
        hasBinary
      });
      if ('errors' in frame) {
        const first = frame.errors[0];
        const badChannel = first === DecodeReason.MISSING_CHANNEL || first === DecodeReason.INVALID_CHANNEL;
        if (!badChannel) channel = fields.channel as string;
        if (!frame.errors.includes(DecodeReason.DATA_TOO_DEEP)) data = fields.data ?? null;
        if (first === DecodeReason.DATA_TOO_DEEP) throw new ZenError('ERR_HTTP_DATA_TOO_DEEP', MAX_DATA_DEPTH);
        throw new ZenError('ERR_HTTP_BAD_REQUEST', first ?? DecodeReason.INVALID_FRAME);
      }
      if (frame.type !== 'broadcast') throw new ZenError('ERR_HTTP_BAD_REQUEST', DecodeReason.INVALID_FRAME);
      channel = frame.channel;
      data = frame.data;
      const r = hub.broadcast(null, identity, channel, frame.data, (result) => answer(() => reply(req, res, 200, result)), hasBinary);
      if (r === 'forbidden') throw new ZenError('ERR_AUTH_FORBIDDEN', 'broadcast');
      if (r === 'not subscribed') throw new ZenError('ERR_AUTH_FORBIDDEN', 'publish');
      if (r === 'bus unavailable') throw new ZenError('ERR_BUS_UNAVAILABLE');
      if (r === 'audit full') throw new ZenError('ERR_AUDIT_FULL');
    } catch (err) {
      const e = err instanceof ZenError ? err : new ZenError('ERR_HTTP_BAD_REQUEST', String(err));
      authFailures?.count(e);
      // The storage is full: counted in the audit's `audit.resumed` row, not recorded one by one.
      if (e.code === 'ERR_AUDIT_FULL') {
        replyError(req, res, e);
        return;
      }
      const at = new Date();
      const userId = identity?.userId ?? null;
      audit.record({ messageId: null, at, sessionId: null, userId, direction: 'in', type: 'broadcast', channel, payload: data, recipients: null });
      audit.record({ messageId: null, at, sessionId: null, userId, direction: 'out', type: 'error', channel, payload: [e.message], recipients: 1 });
      answer(() => replyError(req, res, e));
    }
  };
}
