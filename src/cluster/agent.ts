import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config/options.js';
import type { Store } from '../store/store.js';
import { createStore } from '../store/open-store.js';
import { ServerPresence } from '../store/server-presence.js';
import type { AuditSink } from '../audit/audit-sink.js';
import { createAuditSink } from '../audit/create-audit-sink.js';
import { auditEventReader } from '../audit/audit-events.js';
import type { OlderEvents } from '../bus/channel-log.js';
import { CloseCode } from '../errors.js';
import { newId } from '../protocol/ids.js';
import { PRIVATE_PREFIX } from '../protocol/frames.js';
import { Registry } from './registry.js';
import { Webhooks } from '../webhooks/webhooks.js';
import { BusRouter } from './bus-router.js';
import { BatchFlusher } from './ipc-batcher.js';
import { Placement } from './placement.js';
import { AgentPort } from './agent-port.js';
import { AgentSequencer } from './agent-sequencer.js';
import { RedisBridge } from './redis-bridge.js';
import { WorkerLinks } from './worker-links.js';
import { Supervisor, statsIntervalMs, workersStopMs } from './supervisor.js';
import { controlSocketPath, startControlSocket, type ControlSocket } from './control-socket.js';
import type { WorkerHandle } from './worker-handle.js';
import { workersView, type WorkersView } from './agent-answers.js';
import { answerQuery, answerRequest, type AgentRequestContext } from './agent-requests.js';
import { announceLostSessions } from './worker-loss.js';
import type { AgentAnswer, AgentQuery, WorkerInit, WorkerItem, WorkerMessage } from './ipc-messages.js';
import { AgentMetrics } from './agent-metrics.js';
import { startMetricsListener, type MetricsListener } from '../metrics/metrics-http.js';
import { addWebhookMetrics } from '../metrics/webhook-metrics.js';
import { addAuditMetrics } from '../metrics/audit-metrics.js';

/** Lifecycle of the agent. */
export type AgentState = 'starting' | 'ready' | 'draining' | 'closed';

export interface AgentOptions {
  config: Readonly<Config>;
  logger: Logger;
  /** The worker main to fork. Default: dist/src/cluster/worker-entry.js beside this file. */
  workerEntry?: string;
}

/** The worker main next to this file (both compiled into dist/src/cluster). */
const DEFAULT_WORKER_ENTRY = fileURLToPath(new URL('./worker-entry.js', import.meta.url));

/**
 * The supervisor of `zenconn agent`: it owns the public port and the worker processes,
 * and serves no session itself. It is the composition of:
 *
 * - supervision (supervisor.ts): fork, watchdog, restart with backoff, rolling restart;
 * - placement (placement.ts): each accepted socket, paused, goes to the least-loaded
 *   ready worker, which does the HTTP, TLS and WebSocket work; with `--accept shared`
 *   the workers accept on the agent's bound socket themselves (shared-port.ts) and only
 *   those a worker at its share forwards are placed here;
 * - the registry (registry.ts): workers report session and membership events as they
 *   happen and their figures every second; `GET /agent/*` on any worker asks here
 *   (agent-answers.ts);
 * - the batching per worker (ipc-batcher.ts, the same as the workers' AgentLink);
 * - the links (worker-links.ts): every two workers get a direct link (a socket pair, socket-pair.ts) over
 *   which they send each other their messages and member counts; the agent is not on
 *   that path. It keeps every worker's counts (bus-router.ts) for the messages it says
 *   itself and for `received.count`;
 * - with `--bus`, the Redis bridge (redis-bridge.ts): the agent is one node of the Redis
 *   bus for all its workers;
 * - the database: the agent's `servers` row (server-presence.ts, role `agent`) is the
 *   workers' `parent_id`; a worker that dies has its row and open sessions closed out
 *   (1006) at once, and members of private channels get `left` for its sessions.
 *
 * The control socket (control-socket.ts) answers `/agent/*` locally, as admin.
 *
 * `reload()` (SIGHUP) is the rolling restart; `stop()` (SIGTERM): every worker drains,
 * then the agent's row is stopped.
 */
export class Agent {
  readonly serverId = newId();
  state: AgentState = 'starting';
  readonly registry = new Registry();
  readonly busRouter = new BusRouter();
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  private readonly supervisor: Supervisor;
  private readonly placement: Placement;
  private readonly flusher = new BatchFlusher<WorkerHandle>();
  /** The direct links between every two workers (worker-links.ts). */
  private readonly links: WorkerLinks;
  /** With `--bus`: the agent is one node of the Redis bus on behalf of all its workers. */
  private readonly redisBridge: RedisBridge | null = null;
  /** Positions and hot history of the workers' events (agent-sequencer.ts). */
  private readonly sequencer: AgentSequencer;
  private store!: Store;
  /** A channel's events older than the hot window, from the audit trail the workers write to (null with --no-audit). */
  private get older(): OlderEvents | null {
    return this.config.audit ? (channel, epoch, after, limit) => auditEventReader(this.store)(channel, epoch, after, limit) : null;
  }
  private presence: ServerPresence | null = null;
  /** The agent's own audit rows (what it says for a dead worker's sessions); null with --no-audit. */
  private audit: AuditSink | null = null;
  /** The public port (agent-port.ts): accepted here, or shared with the workers. */
  private readonly port: AgentPort;
  /** The port the agent is bound to (its workers' address too, when they have no direct port). */
  private boundPort: number | null = null;
  /** The local control socket (`/agent/*` as admin, for `zenconn status`); null when off. */
  private control: ControlSocket | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private readonly dbWork = new Set<Promise<unknown>>();
  private readonly startedAt = Date.now();
  /** With `--webhook`: the agent sends every webhook of its workers, decided on all their counts. */
  webhooks: Webhooks | null = null;
  /** `GET /metrics` across the workers (asked through any worker, or on `--metrics-port`). */
  readonly metrics = new AgentMetrics(() => [...this.supervisor.workers()]);
  private metricsListener: MetricsListener | null = null;
  /** What the answers to the workers' questions read (agent-requests.ts). */
  private readonly requests: AgentRequestContext;

  constructor(options: AgentOptions) {
    this.config = options.config;
    this.logger = options.logger.child({ serverId: this.serverId });
    this.port = new AgentPort(this.config.accept, (socket, from) => this.onConnection(socket, from), this.logger);
    this.links = new WorkerLinks(() => this.state === 'draining' || this.state === 'closed', this.logger);
    this.supervisor = new Supervisor(this.config, this.logger, options.workerEntry ?? DEFAULT_WORKER_ENTRY, (h) => this.flusher.markDirty(h), {
      ready: () => this.state === 'ready',
      started: (h, peers) => this.onWorkerStarted(h, peers),
      message: (h, m, handle) => this.onWorkerMessage(h, m, handle),
      exited: (h, crashed, code, signal) => this.onWorkerExit(h, crashed, code, signal),
      draining: (h) => this.registry.setState(h.key, 'draining')
    });
    this.placement = new Placement(
      () => this.supervisor.workers(),
      (h) => this.registry.sessionCount(h.key),
      { maxConnections: this.config.maxConnections, tls: this.config.tlsCert !== null, logger: this.logger }
    );
    if (this.config.bus !== null) {
      this.redisBridge = new RedisBridge({
        url: this.config.bus,
        prefix: this.config.busPrefix,
        nodeId: this.serverId,
        logger: this.logger,
        busRouter: this.busRouter,
        audit: () => this.audit,
        historySize: this.config.historySize,
        historyTtlMs: this.config.historyTtlMs,
        olderEvents: this.older
      });
      // Presence on the other nodes: public channels' members go to the agent's hash
      // (private ones' already do, with their joined/left notices).
      const bridge = this.redisBridge;
      this.registry.onMembership = (type, channel, member) => {
        if (!channel.startsWith(PRIVATE_PREFIX)) bridge.trackMember(type, channel, member);
      };
    }
    this.sequencer = new AgentSequencer(this.busRouter, this.redisBridge, this.config, this.older);
    this.requests = {
      registry: this.registry,
      metrics: this.metrics,
      sequencer: this.sequencer,
      redisBridge: this.redisBridge,
      state: () => this.state,
      workersView: () => this.workersView(),
      workerCount: () => this.config.workers,
      reload: () => this.reload(),
      workers: () => this.supervisor.workers()
    };
  }

  /**
   * Registers the agent's row, starts every worker and waits until all are ready, then
   * listens. Rejects (after stopping what it started) when a worker dies during startup.
   */
  async start(): Promise<AddressInfo> {
    const c = this.config;
    this.store = createStore(c.database);
    await this.store.open();
    this.presence = new ServerPresence({
      store: this.store,
      logger: this.logger,
      server: { id: this.serverId, role: 'agent', parentId: null, address: `${c.tlsCert ? 'https' : 'http'}://${c.host}:${c.port}` },
      staleServerMs: c.staleServerMs,
      heartbeatMs: c.serverHeartbeatMs,
      sweepStale: false
    });
    await this.presence.register();
    if (c.audit) this.audit = await createAuditSink({ store: this.store, serverId: this.serverId, config: c, logger: this.logger });
    if (this.audit) addAuditMetrics(this.metrics.own, this.audit);
    this.presence.startHeartbeat();
    if (Webhooks.enabled(c)) {
      this.webhooks = new Webhooks(c, this.serverId, this.logger);
      addWebhookMetrics(this.metrics.own, this.webhooks);
      this.webhooks.start();
    }
    this.watchdog = setInterval(() => this.watch(), statsIntervalMs(c.workerHeartbeatTimeoutMs));
    this.watchdog.unref();
    await this.redisBridge?.start();

    let address: AddressInfo;
    try {
      this.boundPort = this.port.bindEarly(c.host, c.port);
      await this.supervisor.startAll();
      address = await this.port.open(c.host, c.port, c.listenBacklog, this.supervisor.workers());
      if (c.metricsPort) this.metricsListener = await startMetricsListener(c.metricsHost, c.metricsPort, () => this.metrics.scrape());
      const controlPath = controlSocketPath(c);
      if (controlPath !== null) this.control = await startControlSocket(controlPath, async (query) => this.answer(query), this.logger);
    } catch (err) {
      await this.stop();
      throw err;
    }
    // The workers started before the port was bound: their rows learn it now (later ones from `init`).
    this.boundPort = address.port;
    for (const h of this.supervisor.workers()) h.push({ t: 'agent-port', port: address.port });
    // With port 0 the row was written before the port was known.
    if (address.port !== c.port) await this.presence.setAddress(`${c.tlsCert ? 'https' : 'http'}://${c.host}:${address.port}`);
    this.state = 'ready';
    this.logger.info({ address, workers: c.workers }, 'zenconn agent ready');
    return address;
  }

  /** Live figures: what `GET /agent/workers` answers. */
  workersView(): WorkersView {
    return workersView(this.registry, { id: this.serverId, state: this.state, startedAt: this.startedAt, workers: this.config.workers, refusedConnections: this.placement.refused });
  }

  /** Answers a worker's question for its HTTP client (agent-requests.ts). */
  answer(query: AgentQuery): AgentAnswer {
    return answerQuery(this.requests, query);
  }

  /**
   * Rolling restart: for each slot in turn, start the replacement, wait until it is
   * ready, then drain the old worker (its sessions get 1001) and wait for its exit.
   * A second call while one runs returns the running one.
   */
  reload(): Promise<void> {
    return this.supervisor.reload();
  }

  /** Forwards a signal (SIGUSR1: reopen the access log) to every worker. */
  signalWorkers(signal: NodeJS.Signals): void {
    this.supervisor.signal(signal);
  }

  /**
   * Drains: stops accepting, asks every worker to drain, waits for them (SIGKILL after
   * the shutdown deadline), closes out what is left and stops the agent's row.
   */
  async stop(): Promise<void> {
    if (this.state === 'draining' || this.state === 'closed') return;
    this.state = 'draining';
    this.port.close();
    await this.metricsListener?.close();
    await this.control?.close();
    this.links.close();
    this.placement.dropWaiting();
    const deadline = Date.now() + workersStopMs(this.config.shutdownTimeoutMs);
    await this.supervisor.stopAll(deadline);
    this.presence?.stopHeartbeat();
    if (this.watchdog) clearInterval(this.watchdog);
    this.flusher.flushAll();
    await this.redisBridge?.close();
    if (this.webhooks !== null) {
      // A short try at the last events; what is unsent is sent by the next start.
      await this.webhooks.flush(Math.min(2000, Math.max(0, deadline - Date.now()) + 1000));
      await this.webhooks.close();
    }
    this.sequencer.close();
    await Promise.allSettled([...this.dbWork]);
    if (this.audit) {
      await this.audit.flush(Math.max(0, deadline - Date.now()) + 1000);
      await this.audit.close();
    }
    if (this.store) {
      await this.presence?.markStopped();
      await this.store.close().catch(() => undefined);
    }
    this.state = 'closed';
    this.logger.info('zenconn agent stopped');
  }

  /** Relays the bus's readiness, then kills workers whose heartbeat stopped. */
  private watch(): void {
    this.redisBridge?.relayReadiness(this.supervisor.workers());
    this.supervisor.watch();
  }

  /** A worker was forked: it enters the registry and the routing, gets `init` and its links. */
  private onWorkerStarted(h: WorkerHandle, peers: WorkerHandle[]): void {
    this.registry.addWorker(h.key, h.slot, h.child.pid ?? 0);
    this.busRouter.addWorker(h);
    if (this.redisBridge) h.push({ t: 'bus-ready', ready: this.redisBridge.ready });
    const init: WorkerInit = {
      t: 'init',
      config: { ...this.config },
      slot: h.slot,
      parentId: this.serverId,
      statsIntervalMs: statsIntervalMs(this.config.workerHeartbeatTimeoutMs),
      peers: peers.map((p) => p.key),
      agentPort: this.boundPort
    };
    h.child.send(init);
    for (const p of peers) this.links.link(h, p);
  }

  private onWorkerMessage(h: WorkerHandle, message: WorkerMessage, handle: unknown): void {
    if (message.t === 'forward') {
      this.port.forwarded(h, handle);
      return;
    }
    for (const item of message.items) this.onItem(h, item);
  }

  private onItem(h: WorkerHandle, item: WorkerItem): void {
    switch (item.t) {
      case 'publish':
        // The other workers got it over their links; the other nodes get it from here.
        this.redisBridge?.publishPayload(item.payload);
        return;
      case 'sequence':
        this.sequencer.sequence(h.key, item.channel, item.payload);
        return;
      case 'count':
        this.busRouter.setCount(h.key, item.channel, item.count);
        this.redisBridge?.countChanged(item.channel);
        return;
      case 'sync': {
        // The count before it is in the bus router already; the other nodes may need a Redis round trip.
        const wait = this.redisBridge?.whenSubscribed(item.channel) ?? null;
        if (wait === null) h.push({ t: 'synced', id: item.id });
        else void wait.then(() => h.push({ t: 'synced', id: item.id }));
        return;
      }
      case 'open':
        this.registry.sessionOpened(h.key, item.session);
        this.webhooks?.tracker.sessionOpened({ id: item.session.id, userId: item.session.user });
        return;
      case 'close':
        this.registry.sessionClosed(h.key, item.session);
        this.webhooks?.tracker.sessionClosed({ id: item.session });
        return;
      case 'sub':
        this.registry.subscribed(h.key, item.session, item.channel);
        this.webhooks?.tracker.subscribed({ id: item.session }, item.channel);
        return;
      case 'unsub':
        this.registry.unsubscribed(h.key, item.session, item.channel);
        this.webhooks?.tracker.unsubscribed({ id: item.session }, item.channel);
        return;
      case 'settled':
        h.settleOne();
        return;
      case 'stats':
        this.registry.setStats(h.key, item.stats);
        return;
      case 'hello':
        h.serverId = item.serverId;
        this.registry.setServerId(h.key, item.serverId);
        return;
      case 'listening':
        this.port.workerListening();
        return;
      case 'ready':
        if (h.state !== 'starting') return;
        h.markReady();
        this.registry.setState(h.key, 'ready', item.port);
        this.logger.info({ slot: h.slot, pid: h.child.pid, workerId: h.serverId, directPort: item.port }, 'worker ready');
        // At start every worker gets the shared port once all are ready; a replacement as soon as it is.
        if (this.state === 'ready') this.port.share(h);
        this.placement.serveWaiting();
        return;
      case 'request':
        answerRequest(this.requests, h, item.id, item.query);
        return;
      case 'metrics':
        this.metrics.answered(item.id, item.metrics);
        return;
      case 'released':
        h.releasedWaiter?.();
        return;
      case 'stopping':
        this.supervisor.setDraining(h);
        return;
    }
  }

  /** A worker exited: it leaves the registry and the routing; what it cannot say any more is said here. */
  private onWorkerExit(h: WorkerHandle, crashed: boolean, code: number | null, signal: NodeJS.Signals | null): void {
    this.flusher.forget(h);
    const lost = this.registry.removeWorker(h.key);
    for (const other of this.supervisor.workers()) other.push({ t: 'peer-gone', key: h.key });
    for (const channel of this.busRouter.removeWorker(h.key)) this.redisBridge?.countChanged(channel);
    const log = { slot: h.slot, pid: h.child.pid, workerId: h.serverId, code, signal, lostSessions: lost.length };
    if (crashed) this.logger.error(log, 'worker died');
    else this.logger.info(log, 'worker exited');
    // A worker that crashed, or was killed at the drain deadline, cannot record its sessions' ends.
    announceLostSessions(lost, crashed || signal !== null ? this.audit : null, this.busRouter, this.redisBridge, this.webhooks);
    if (h.serverId !== null && this.store) {
      const workerId = h.serverId;
      this.track(
        this.store.closeOutServer(workerId, new Date(), CloseCode.ABNORMAL).then(
          (sessions) => {
            if (sessions > 0) this.logger.warn({ workerId, sessions }, 'closed out the sessions of a dead worker (1006)');
          },
          (err: unknown) => this.logger.error({ err: (err as Error).message, workerId }, 'could not close out a dead worker')
        )
      );
    }
  }

  /** A connection to place: accepted here, or forwarded by worker `from` at its share (`--accept shared`). */
  private onConnection(socket: Socket, from: WorkerHandle | null = null): void {
    socket.on('error', () => socket.destroy());
    if (this.state !== 'ready') {
      socket.destroy();
      return;
    }
    this.placement.place(socket, from);
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'database write failed'));
    this.dbWork.add(q);
    void q.finally(() => this.dbWork.delete(q));
  }
}
