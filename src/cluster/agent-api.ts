import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Router } from '../http/router.js';
import type { TokenVerifier } from '../auth/tokens.js';
import { requireGrant, type OnRefused } from '../http/guard.js';
import { reply, replyError } from '../http/respond.js';
import { ZenError } from '../errors.js';
import type { AgentAnswer, AgentQuery } from './ipc-messages.js';

/** Default and largest `limit` of `GET /agent/sessions`. */
export const SESSIONS_LIMIT_DEFAULT = 1000;
export const SESSIONS_LIMIT_MAX = 10000;

/**
 * Registers the agent's HTTP API on a node's router. Whichever process gets the request
 * answers it by asking the agent (`ask`: over IPC in a worker, in-process when the agent
 * serves sessions itself):
 *
 * - `GET /agent/workers` — `{"agent":{…},"workers":[{"pid","state","sessions",…}],"totals":{…}}`.
 * - `GET /agent/sessions?channel=&user=&limit=` — the live sessions.
 * - `POST /agent/reload` — rolling restart of the workers, as SIGHUP; 202.
 *
 * Every route needs the `admin` grant (pids, server ids and memory figures are for
 * operators only). With `verifier` null (the control socket, control-socket.ts) the
 * grant is implied by the socket file's permission. A request refused for its token or
 * grant is told to `onRefused` (the node records it).
 *
 * Returns the removers of the routes.
 */
export function registerAgentRoutes(
  router: Router,
  verifier: TokenVerifier | null,
  ask: (query: AgentQuery) => Promise<AgentAnswer>,
  onRefused?: OnRefused
): Array<() => void> {
  const answer = async (req: IncomingMessage, res: ServerResponse, query: AgentQuery): Promise<void> => {
    const a = await ask(query);
    reply(req, res, a.status, a.body);
  };
  const admin = (handler: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>) => async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    try {
      if (verifier !== null) await requireGrant(req, url, verifier, 'admin', onRefused);
    } catch (err) {
      replyError(req, res, err instanceof ZenError ? err : new ZenError('ERR_HTTP_BAD_REQUEST', String(err)));
      return;
    }
    await handler(req, res, url);
  };
  return [
    router.add('GET', '/agent/workers', admin((req, res) => answer(req, res, { kind: 'workers' }))),
    router.add(
      'GET',
      '/agent/sessions',
      admin(async (req, res, url) => {
        const raw = url.searchParams.get('limit');
        const limit = raw === null ? SESSIONS_LIMIT_DEFAULT : Number(raw);
        if (!Number.isInteger(limit) || limit < 1 || limit > SESSIONS_LIMIT_MAX) {
          replyError(req, res, new ZenError('ERR_HTTP_BAD_REQUEST', `limit must be an integer from 1 to ${SESSIONS_LIMIT_MAX}`));
          return;
        }
        await answer(req, res, { kind: 'sessions', channel: url.searchParams.get('channel') || null, user: url.searchParams.get('user') || null, limit });
      })
    ),
    router.add('POST', '/agent/reload', admin((req, res) => answer(req, res, { kind: 'reload' })))
  ];
}
