import type { IncomingMessage, ServerResponse } from 'node:http';
import { ZenError } from '../errors.js';
import { DecodeReason, validateClientFrame } from '../protocol/frames.js';
import type { TokenVerifier } from '../auth/tokens.js';
import { identify, type OnRefused } from '../http/guard.js';
import { reply, replyError } from '../http/respond.js';
import type { RouteHandler } from '../http/router.js';
import type { PresenceSource } from './presence.js';

/**
 * `GET /api/presence?channel=…` with a bearer token holding `publish` or `admin` →
 * 200 `{"channel","members":[{"session","user"},…],"truncated"}`, at most `max`
 * members (`--presence-max`), from every worker and node, as the socket's `presence`.
 *
 * Errors: 400 missing or invalid channel, 401 no or bad token, 403 with neither grant
 * (told to `onRefused`, as the other admin routes do), 503 when the members cannot be
 * gathered now (a worker whose agent does not answer).
 */
export function presenceApi(source: PresenceSource, verifier: TokenVerifier, max: number, onRefused?: OnRefused): RouteHandler {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    let channel: string;
    try {
      let userId: string | null = null;
      try {
        const identity = await identify(req, url, verifier);
        userId = identity.userId;
        if (!identity.grants.has('publish') && !identity.grants.has('admin')) throw new ZenError('ERR_AUTH_FORBIDDEN', 'publish');
      } catch (err) {
        if (err instanceof ZenError) onRefused?.(req, err, userId);
        throw err;
      }
      const raw = url.searchParams.get('channel');
      const frame = validateClientFrame({ type: 'presence', channel: raw ?? undefined, token: undefined, hasData: false, data: undefined, hasBinary: false });
      if ('errors' in frame) throw new ZenError('ERR_HTTP_BAD_REQUEST', frame.errors[0] ?? DecodeReason.INVALID_CHANNEL);
      if (frame.type !== 'presence') throw new ZenError('ERR_HTTP_BAD_REQUEST', DecodeReason.INVALID_FRAME);
      channel = frame.channel;
    } catch (err) {
      replyError(req, res, err instanceof ZenError ? err : new ZenError('ERR_HTTP_BAD_REQUEST', String(err)));
      return;
    }
    const list = await source.members(channel, max);
    if (list === null) {
      reply(req, res, 503, { error: 'presence unavailable' });
      return;
    }
    reply(req, res, 200, { channel, members: list.members, truncated: list.truncated });
  };
}
