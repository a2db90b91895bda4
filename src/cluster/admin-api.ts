import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Router } from '../http/router.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { Store } from '../store/store.js';
import { requireGrant, type OnRefused } from '../http/guard.js';
import { readBody, reply, replyError } from '../http/respond.js';
import { registerDashboard } from '../http/dashboard.js';
import { ZenError } from '../errors.js';
import type { AdminQuery, AgentAnswer } from './ipc-messages.js';

/** Default and largest number of channels in an overview (`channels=`). */
export const ADMIN_CHANNELS_DEFAULT = 100;
export const ADMIN_CHANNELS_MAX = 1000;
/** Default and largest number of sessions in a search (`limit=`). */
export const ADMIN_SESSIONS_DEFAULT = 100;
export const ADMIN_SESSIONS_MAX = 1000;
/** Longest search text and close body: an id or a name, not a document. */
const MAX_QUERY_CHARS = 256;
const MAX_CLOSE_BODY_BYTES = 1024;

/** Options of {@link registerAdminRoutes}. */
export interface AdminRoutesOptions {
  verifier: TokenVerifier;
  /** The database: the live nodes come from its `servers` table. */
  store: Store;
  /** A server not seen for this long is not listed (`--stale-server-ms`). */
  staleServerMs: number;
  /** Answers a question: over IPC from a worker, in-process in one process. */
  ask: (query: AdminQuery) => Promise<AgentAnswer>;
  onRefused?: OnRefused;
}

/** A live node (a server without a parent) with its live workers, from the `servers` table. */
export interface NodeView {
  id: string;
  role: string;
  hostname: string;
  pid: number;
  address: string;
  startedAt: string;
  lastSeenAt: string;
  workers: number;
}

/**
 * The admin API behind the dashboard, and the dashboard's files (http/dashboard.ts).
 * Every route needs the `admin` grant; a refusal is told to `onRefused`.
 *
 * - `GET /api/admin/overview?channels=N` — the agent and its workers (as `/agent/workers`),
 *   `counters` since start (`messagesIn`, `messagesOut`, `sessionsOpened`, `sessionsClosed`),
 *   `sessions`, `channels: {total, top: [{channel, members}]}` (N with most members,
 *   default 100, at most 1000), `nodes` (live servers of the database, `--bus` or not) and `at` (epoch ms).
 * - `GET /api/admin/sessions?q=&limit=` — sessions whose id, user, address or a channel
 *   contains `q` (case-insensitive), at most `limit` (default 100, at most 1000):
 *   `{"sessions":[…],"truncated":bool}`.
 * - `POST /api/admin/sessions/close` with `{"session":"<id>"}` — closes it with 4002 on
 *   whichever worker holds it: 202, or 404 when no session has that id.
 *
 * Returns the removers of the routes.
 */
export function registerAdminRoutes(router: Router, o: AdminRoutesOptions): Array<() => void> {
  const admin =
    (handler: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>) =>
    async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
      try {
        await requireGrant(req, url, o.verifier, 'admin', o.onRefused);
        await handler(req, res, url);
      } catch (err) {
        if (res.headersSent) throw err;
        if (err instanceof ZenError) replyError(req, res, err);
        else throw err;
      }
    };
  const answer = async (req: IncomingMessage, res: ServerResponse, query: AdminQuery): Promise<void> => {
    const a = await o.ask(query);
    reply(req, res, a.status, a.body);
  };
  return [
    ...registerDashboard(router),
    router.add(
      'GET',
      '/api/admin/overview',
      admin(async (req, res, url) => {
        const channels = intParam(url, 'channels', ADMIN_CHANNELS_DEFAULT, ADMIN_CHANNELS_MAX);
        const [a, nodes] = await Promise.all([o.ask({ kind: 'overview', channels }), liveNodes(o.store, o.staleServerMs)]);
        if (a.status !== 200) return reply(req, res, a.status, a.body);
        reply(req, res, 200, { ...(a.body as object), nodes, at: Date.now() });
      })
    ),
    router.add(
      'GET',
      '/api/admin/sessions',
      admin(async (req, res, url) => {
        const limit = intParam(url, 'limit', ADMIN_SESSIONS_DEFAULT, ADMIN_SESSIONS_MAX);
        const q = (url.searchParams.get('q') ?? '').trim();
        if (q.length > MAX_QUERY_CHARS) throw new ZenError('ERR_HTTP_BAD_REQUEST', `q is longer than ${MAX_QUERY_CHARS} characters`);
        await answer(req, res, { kind: 'sessions', q, limit });
      })
    ),
    router.add(
      'POST',
      '/api/admin/sessions/close',
      admin(async (req, res) => {
        const body = await readBody(req, MAX_CLOSE_BODY_BYTES);
        let session: unknown;
        try {
          session = (JSON.parse(body.toString('utf8')) as { session?: unknown } | null)?.session;
        } catch {
          throw new ZenError('ERR_HTTP_BAD_REQUEST', 'the body must be JSON: {"session":"<id>"}');
        }
        if (typeof session !== 'string' || session === '') throw new ZenError('ERR_HTTP_BAD_REQUEST', 'the body must be JSON: {"session":"<id>"}');
        await answer(req, res, { kind: 'close', session });
      })
    )
  ];
}

/** An integer query parameter from 1 to `max`, `fallback` when absent; 400 otherwise. */
function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new ZenError('ERR_HTTP_BAD_REQUEST', `${name} must be an integer from 1 to ${max}`);
  return n;
}

/** Live nodes: servers without a parent, not stopped, seen within `staleServerMs`; null when the database does not answer. */
async function liveNodes(store: Store, staleServerMs: number): Promise<NodeView[] | null> {
  try {
    const now = Date.now();
    const live = (await store.listServers()).filter((s) => s.stoppedAt === null && now - s.lastSeenAt.getTime() <= staleServerMs);
    return live
      .filter((s) => s.parentId === null)
      .map((s) => ({
        id: s.id,
        role: s.role,
        hostname: s.hostname,
        pid: s.pid,
        address: s.address,
        startedAt: s.startedAt.toISOString(),
        lastSeenAt: s.lastSeenAt.toISOString(),
        workers: live.filter((w) => w.parentId === s.id).length
      }));
  } catch {
    return null;
  }
}
