import type { HubObserver } from '../channels/hub.js';
import type { Session } from '../session/session.js';
import type { ZenNode } from '../node.js';
import { TokenVerifier } from '../auth/tokens.js';
import { CloseCode } from '../errors.js';
import { Registry } from './registry.js';
import { StatsCollector } from './stats.js';
import { workersView } from './agent-answers.js';
import { answerAdminQuery } from './admin-answers.js';
import { registerAdminRoutes } from './admin-api.js';

/** The registry key of the process itself. */
const SELF = 0;

/**
 * The admin API of a process that holds its sessions itself (`zenconn serve`): it keeps
 * a registry of its own sessions, as an agent does of its workers', fed by the hub's
 * observer, and its figures sampled every second. Give `observer` to the node, then
 * `attach` it once the node started.
 */
export class SelfAdmin {
  readonly registry = new Registry();
  private readonly stats = new StatsCollector();
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor() {
    this.registry.addWorker(SELF, 0, process.pid, this.startedAt);
  }

  /** The node's hub observer. */
  readonly observer: HubObserver<Session> = {
    sessionOpened: (s) => this.registry.sessionOpened(SELF, { id: s.id, remoteAddr: s.init.remoteAddr, user: s.userId, protocol: s.protocol, connectedAt: s.connectedAt.getTime() }),
    sessionClosed: (s) => {
      this.stats.sessionClosed(s);
      this.registry.sessionClosed(SELF, s.id);
    },
    subscribed: (s, channel) => this.registry.subscribed(SELF, s.id, channel),
    unsubscribed: (s, channel) => this.registry.unsubscribed(SELF, s.id, channel)
  };

  /** Registers the admin API and the dashboard on the started node, and starts sampling. */
  attach(node: ZenNode, port: number | null): void {
    const c = node.config;
    this.registry.setServerId(SELF, node.serverId);
    this.registry.setState(SELF, 'ready', port);
    const sample = (): void => this.registry.setStats(SELF, this.stats.sample(node.hub, 0, node.admission.refused));
    sample();
    this.timer = setInterval(sample, 1000);
    this.timer.unref();
    const view = () => workersView(this.registry, { id: node.serverId, state: node.state, startedAt: this.startedAt, workers: 0 });
    registerAdminRoutes(node.router, {
      verifier: new TokenVerifier({ secret: c.jwtSecret, publicKeyFile: c.jwtPublicKey }),
      store: node.store,
      staleServerMs: c.staleServerMs,
      ask: async (query) => answerAdminQuery(query, this.registry, view, (_worker, id) => closeByOperator(node, id)),
      onRefused: (req, err, userId) => node.recordRefusedRequest(req, err, userId)
    });
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.stats.close();
  }
}

/** Closes session `id` of `node` with 4002, if it holds it. */
export function closeByOperator(node: ZenNode, id: string): void {
  node.hub.sessions.get(id)?.close(CloseCode.CLOSED_BY_OPERATOR, 'closed by an operator');
}
