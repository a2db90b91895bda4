import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/options.js';
import type { ServerRole, Store } from '../store/store.js';
import type { Router } from '../http/router.js';
import type { OnRefused } from '../http/guard.js';
import { createStaticHandler } from '../http/static-files.js';
import { reply } from '../http/respond.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { AuthFailures } from '../auth/auth-failures.js';
import type { Hub } from '../channels/hub.js';
import { broadcastApi } from '../channels/broadcast-api.js';
import type { PresenceSource } from '../channels/presence.js';
import { presenceApi } from '../channels/presence-api.js';
import type { Session } from '../session/session.js';
import type { Bus } from '../bus/bus.js';
import type { AuditSink } from '../audit/audit-sink.js';
import { auditApi } from '../audit/audit-api.js';
import { metricsRoute, type ScrapeSource } from '../metrics/metrics-http.js';

/** What a node's HTTP routes read (node.ts gives it). */
export interface NodeRoutes {
  config: Readonly<Config>;
  role: ServerRole;
  /** The node's lifecycle state, for `/healthz` and `/readyz`. */
  state: () => string;
  store: Store;
  bus: Bus;
  audit: AuditSink;
  hub: Hub<Session>;
  verifier: TokenVerifier;
  presence: PresenceSource;
  authFailures: AuthFailures;
  /** A refused request to an admin route (an `http.refused` audit row). */
  onRefused: OnRefused;
  /** This process's metrics (`GET /metrics`, not on a worker). */
  scrape: ScrapeSource;
  /** Whether the database answers (`/readyz`). */
  ping: () => Promise<boolean>;
}

/**
 * Registers a node's HTTP routes on `router`: `/healthz`, `/readyz`, the HTTP API
 * (presence, broadcast, audit), `/metrics` (not on a worker: its agent's across the
 * workers is registered by the worker) and, unless `--public off`, the browser modules
 * `/zenconn/msgpackr.js` and `/zenconn/client.js`. The agent API adds its own after start.
 */
export function registerNodeRoutes(router: Router, n: NodeRoutes): void {
  const c = n.config;
  router.add('GET', '/healthz', (req, res) => reply(req, res, 200, { status: 'ok', state: n.state() }));
  router.add('GET', '/readyz', async (req, res) => {
    const database = await n.ping();
    const state = n.state();
    const checks = { database, bus: n.bus.ready, audit: n.audit.healthy, auditFull: n.audit.full, state };
    const ok = checks.database && checks.bus && checks.audit && !checks.auditFull && state === 'ready';
    reply(req, res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', ...checks });
  });
  // A message is bounded by the same size whichever way it comes in: a socket frame's.
  router.add('GET', '/api/presence', presenceApi(n.presence, n.verifier, c.presenceMax, n.onRefused));
  router.add('POST', '/api/broadcast', broadcastApi(n.hub, n.verifier, Math.min(c.maxHttpBodyBytes, c.maxPayloadBytes), n.audit, n.authFailures));
  router.add('GET', '/api/audit', auditApi(n.store, n.verifier, n.onRefused));
  // A worker's /metrics is its agent's (across the workers): the worker registers that route itself.
  if (n.role !== 'worker') router.add('GET', '/metrics', metricsRoute(n.verifier, n.scrape, n.onRefused));
  // The demo console's MessagePack codec, straight from the msgpackr package; a static
  // file like the console's own, so `--public off` turns it off too.
  if (c.public !== null) {
    const msgpackrBrowser = createStaticHandler({ root: dirname(createRequire(import.meta.url).resolve('msgpackr')) });
    router.add('GET', '/zenconn/msgpackr.js', (req: IncomingMessage, res: ServerResponse) => {
      req.url = '/index.min.js';
      msgpackrBrowser(req, res);
    });
    // The client library as one browser module (scripts/build-client.js writes it beside
    // the compiled client at build time), for `<script type="module">` and the console.
    const clientBundle = createStaticHandler({ root: fileURLToPath(new URL('../client/', import.meta.url)) });
    router.add('GET', '/zenconn/client.js', (req: IncomingMessage, res: ServerResponse) => {
      req.url = '/zenconn-client.js';
      clientBundle(req, res);
    });
  }
}
