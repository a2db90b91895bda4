import type { IncomingMessage, ServerResponse } from 'node:http';
import { ZenError } from '../errors.js';
import { ALL_CHANNEL, CHANNEL_RE } from '../protocol/frames.js';
import type { Hub } from '../channels/hub.js';
import type { Grant, Identity } from '../auth/grants.js';
import { bearerToken, type TokenVerifier } from '../auth/tokens.js';
import { parseBody, readBody, reply, replyError } from './respond.js';

/**
 * Resolves the bearer identity of an HTTP API request and checks it holds `grant`.
 * Throws 401 (no/bad token) or 403 (grant missing).
 */
export async function requireGrant(req: IncomingMessage, url: URL, verifier: TokenVerifier, grant: Grant): Promise<Identity> {
  const token = bearerToken(req.headers.authorization, url.searchParams);
  if (token === null) throw new ZenError('ERR_AUTH_TOKEN_MISSING');
  const identity = await verifier.verify(token);
  if (!identity.grants.has(grant)) throw new ZenError('ERR_AUTH_FORBIDDEN', grant);
  return identity;
}

/**
 * `POST /api/broadcast`: body `{"channel", "data"}` (JSON, or MessagePack with
 * `Content-Type: application/msgpack`), Bearer token with `publish` (`*` needs
 * `broadcast`) → 200 `{"id","count"}` once the audit rows are durable.
 */
export function broadcastApi(hub: Hub, verifier: TokenVerifier, maxBodyBytes: number) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    try {
      const identity = await requireGrant(req, url, verifier, 'publish');
      const { value: body, hasBinary } = parseBody(req, await readBody(req, maxBodyBytes));
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ZenError('ERR_HTTP_BAD_REQUEST', 'body must be an object {"channel","data"}');
      const { channel, data } = body as { channel?: unknown; data?: unknown };
      if (typeof channel !== 'string') throw new ZenError('ERR_HTTP_BAD_REQUEST', 'missing channel');
      if (channel !== ALL_CHANNEL && !CHANNEL_RE.test(channel)) throw new ZenError('ERR_HTTP_BAD_REQUEST', 'invalid channel');
      if (data === undefined) throw new ZenError('ERR_HTTP_BAD_REQUEST', 'missing data');
      const r = hub.broadcast(null, identity, channel, data, (result) => reply(req, res, 200, result), hasBinary);
      if (r === 'forbidden') throw new ZenError('ERR_AUTH_FORBIDDEN', 'broadcast');
      if (r === 'not subscribed') throw new ZenError('ERR_AUTH_FORBIDDEN', 'publish');
      if (r === 'bus unavailable') throw new ZenError('ERR_BUS_UNAVAILABLE');
    } catch (err) {
      replyError(req, res, err instanceof ZenError ? err : new ZenError('ERR_HTTP_BAD_REQUEST', String(err)));
    }
  };
}
