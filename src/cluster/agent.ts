import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import type { Logger } from 'pino';
import type { Config } from '../config/options.js';
import type { Store } from '../store/store.js';
import { createStore } from '../store/open-store.js';
import type { AuditSink } from '../audit/audit-sink.js';
import { createAuditSink } from '../audit/create-audit-sink.js';
import type { BusMessage } from '../bus/bus.js';
import { RedisBus } from '../bus/redis-bus.js';
import { CloseCode } from '../errors.js';
import { newId } from '../protocol/ids.js';
import { PRIVATE_PREFIX } from '../protocol/frames.js';
import { Registry, type WorkerState } from './registry.js';
import { PUBLISH_COALESCE_MS } from './agent-link.js';
import { BusRouter, type RouteTarget } from './router.js';
import type { AgentAnswer, AgentItem, AgentQuery, Batch, WorkerInit, WorkerItem, WorkerMessage } from './ipc-messages.js';

/** Lifecycle of the agent. */
export type AgentState = 'starting' | 'ready' | 'draining' | 'closed';

export interface AgentOptions {
  config: Readonly<Config>;
  logger: Logger;
  /** The worker main to fork. Default: dist/src/cluster/worker-entry.js beside this file. */
  workerEntry?: string;
}

/** Sockets waiting for a ready worker (all of them restarting) before new ones are refused. */
export const MAX_WAITING_SOCKETS = 1024;
/** Batches to one worker not yet written to its pipe above which deliveries to it are dropped. */
export const MAX_UNSENT_BATCHES = 4096;
/** Restart delay cap of a worker that keeps crashing. */
export const MAX_RESTART_DELAY_MS = 30000;
/** A worker that ran this long before it died starts the backoff from zero again. */
export const STABLE_AFTER_MS = 30000;
/** How long a rolling restart waits for a retiring worker's handed-over connections to send their request. */
const HANDOFF_SETTLE_MS = 2000;
/** A starting worker may be silent this long (module loading, database migration) before the watchdog kills it. */
const STARTUP_SILENCE_MS = 30000;

/** The worker main next to this file (both compiled into dist/src/cluster). */
const DEFAULT_WORKER_ENTRY = fileURLToPath(new URL('./worker-entry.js', import.meta.url));

/**
 * How long to wait before replacing a worker that crashed `consecutive` times in a row:
 * at once the first time, then 1 s, 2 s, 4 s, … capped at MAX_RESTART_DELAY_MS.
 */
export function restartDelayMs(consecutive: number): number {
  return consecutive <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 1000 * 2 ** Math.min(consecutive - 2, 30));
}

/** How often workers report (and so how often the watchdog looks). */
export function statsIntervalMs(heartbeatTimeoutMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(heartbeatTimeoutMs / 4)));
}

/** One worker process, as the agent drives it. */
class WorkerHandle implements RouteTarget {
  state: WorkerState = 'starting';
  serverId: string | null = null;
  lastSeen = Date.now();
  readonly startedAt = Date.now();
  /** Connections handed over and not yet settled (placement counts them as load). */
  inflight = 0;
  /** The agent asked it to stop (rolling restart, drain): its exit is not a crash. */
  expectedExit = false;
  killed = false;
  exited = false;
  unsent = 0;
  dropped = 0;
  lastFlushAt = 0;
  /** Whether the pending batch holds more than deliveries (those may wait PUBLISH_COALESCE_MS). */
  urgent = false;
  private items: AgentItem[] = [];
  private remotes = new Map<string, number>();
  private readonly readyWaiters: Array<(ok: boolean) => void> = [];
  private readonly exitWaiters: Array<() => void> = [];
  releasedWaiter: (() => void) | null = null;

  constructor(
    readonly key: number,
    readonly slot: number,
    readonly child: ChildProcess,
    private readonly schedule: (h: WorkerHandle) => void
  ) {}

  deliver(payload: Uint8Array): void {
    if (this.unsent >= MAX_UNSENT_BATCHES) {
      this.dropped++;
      return;
    }
    this.items.push({ t: 'deliver', payload });
    this.schedule(this);
  }

  setRemote(channel: string, count: number): void {
    this.remotes.set(channel, count);
    this.urgent = true;
    this.schedule(this);
  }

  push(item: AgentItem): void {
    this.items.push(item);
    this.urgent = true;
    this.schedule(this);
  }

  /** Sends the turn's batch: remote counts first, then the items in order. */
  flush(): void {
    if (this.items.length === 0 && this.remotes.size === 0) return;
    this.urgent = false;
    this.lastFlushAt = performance.now();
    const items: AgentItem[] = [];
    for (const [channel, count] of this.remotes) items.push({ t: 'remote', channel, count });
    this.remotes.clear();
    for (const item of this.items) items.push(item);
    this.items = [];
    if (this.exited || !this.child.connected) return;
    const batch: Batch<AgentItem> = { t: 'batch', items };
    this.unsent++;
    try {
      this.child.send(batch, () => {
        this.unsent--;
      });
    } catch {
      this.unsent--;
    }
  }

  whenReady(): Promise<boolean> {
    if (this.state !== 'starting') return Promise.resolve(!this.exited);
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  markReady(): void {
    this.state = 'ready';
    for (const w of this.readyWaiters.splice(0)) w(true);
  }

  whenExited(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  markExited(): void {
    this.exited = true;
    for (const w of this.readyWaiters.splice(0)) w(false);
    for (const w of this.exitWaiters.splice(0)) w();
  }
}

/**
 * The supervisor of `zenconn agent`: it owns the public port and the worker processes,
 * and serves no session itself.
 *
 * - Placement: the listener pauses each accepted socket and hands it (as an IPC handle)
 *   to the ready worker with the fewest sessions plus handed-over connections not yet
 *   settled; the worker does the HTTP, TLS and WebSocket work.
 * - Registry: workers report session and membership events as they happen and their
 *   figures every second (see registry.ts); `GET /agent/*` on any worker asks here.
 * - Bus: every two workers get a direct link (`link`: a socket pair the agent makes and
 *   hands over), over which they send each other their messages and member counts; the
 *   agent is not on that path. It keeps every worker's counts (router.ts) for the
 *   messages it says itself and for `received.count`. With `--bus`, the agent is one
 *   node of the Redis bus for all its workers: their messages go out once, the other
 *   nodes' come in once and are routed to the workers with members, member counts are
 *   summed out and relayed in.
 * - Database: the agent's `servers` row (role `agent`) is the workers' `parent_id`; a
 *   worker that dies has its row and open sessions closed out (1006) at once.
 * - Supervision: a worker that exits unasked is replaced at once, then with exponential
 *   backoff (1 s, 2 s, … capped at 30 s) while it keeps crashing; one whose heartbeat is
 *   silent for `workerHeartbeatTimeoutMs` is killed (SIGKILL) and replaced. Members of
 *   private channels get `left` for the sessions lost with a dead worker.
 * - `reload()` (SIGHUP): one slot at a time, the replacement is ready before the old
 *   worker drains (1001), so the port keeps answering. `stop()` (SIGTERM): every worker
 *   drains, then the agent's row is stopped.
 */
export class Agent {
  readonly serverId = newId();
  state: AgentState = 'starting';
  readonly registry = new Registry();
  readonly router = new BusRouter();
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  private readonly entry: string;
  private readonly handles = new Map<number, WorkerHandle>();
  /** The current worker of each slot (a replacement takes the slot before the old one drains). */
  private readonly slots: Array<WorkerHandle | null>;
  private readonly crashes: Array<{ consecutive: number; timer: NodeJS.Timeout | null }>;
  private readonly dirty = new Set<WorkerHandle>();
  private flushScheduled = false;
  private nextKey = 1;
  private nextConn = 1;
  private store!: Store;
  /** The agent's own audit rows (what it says for a dead worker's sessions); null with --no-audit. */
  private audit: AuditSink | null = null;
  private server: Server | null = null;
  private readonly waiting: Socket[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly dbWork = new Set<Promise<unknown>>();
  private reloading: Promise<void> | null = null;
  private startupFailure: ((err: Error) => void) | null = null;
  /** Makes the connected socket pairs that link workers to each other (see `link`); open only while it does. */
  private pairServer: Server | null = null;
  private pairDir: string | null = null;
  /** Accepted ends waiting for their connecting end (pairs are made one at a time). */
  private pairAccepted: ((socket: Socket) => void) | null = null;
  private pairChain: Promise<void> = Promise.resolve();
  /** Links queued or being made; the pair server closes when it drops to 0. */
  private pendingLinks = 0;
  private readonly startedAt = Date.now();
  private dbReachable = true;
  /** With `--bus`: the agent is one node of the Redis bus on behalf of all its workers. */
  private readonly nodes: RedisBus | null = null;
  private nodesReady = true;

  constructor(options: AgentOptions) {
    this.config = options.config;
    this.logger = options.logger.child({ serverId: this.serverId });
    this.entry = options.workerEntry ?? DEFAULT_WORKER_ENTRY;
    this.slots = new Array<WorkerHandle | null>(this.config.workers).fill(null);
    this.crashes = this.slots.map(() => ({ consecutive: 0, timer: null }));
    if (this.config.bus !== null) {
      const nodes = new RedisBus({ url: this.config.bus, prefix: this.config.busPrefix, nodeId: this.serverId, logger: this.logger });
      this.nodes = nodes;
      // Other nodes' messages go to the workers with members, as a worker's would.
      nodes.onMessage((m) => {
        const f = m.frame;
        if (m.announced && (f.type === 'left' || f.type === 'joined')) {
          // Recorded once, here, for all the workers (which get it as a plain message).
          this.router.publish(null, m.channel, serialize({ channel: m.channel, frame: f, exclude: m.exclude }));
          const recipients = this.router.total(m.channel);
          this.audit?.record({ messageId: null, at: new Date(), sessionId: f.data.session, userId: f.data.user, direction: 'out', type: f.type, channel: f.channel, payload: f.data, recipients });
          return;
        }
        this.router.publish(null, m.channel, serialize(m));
      });
      nodes.onRemoteCountChange((channel, count) => this.router.setExternal(channel, count));
    }
  }

  /**
   * Registers the agent's row, starts every worker and waits until all are ready, then
   * listens. Rejects (after stopping what it started) when a worker dies during startup.
   */
  async start(): Promise<AddressInfo> {
    const c = this.config;
    this.store = createStore(c.database);
    await this.store.open();
    const now = new Date();
    const closed = await this.store.closeOutStaleServers(new Date(now.getTime() - c.staleServerMs), now);
    if (closed.servers > 0) this.logger.warn(closed, 'closed out servers that died without stopping');
    await this.store.registerServer({
      id: this.serverId,
      role: 'agent',
      parentId: null,
      hostname: hostname(),
      pid: process.pid,
      address: `${c.tlsCert ? 'https' : 'http'}://${c.host}:${c.port}`,
      startedAt: now
    });
    if (c.audit) this.audit = await createAuditSink({ store: this.store, serverId: this.serverId, config: c, logger: this.logger });
    const heartbeat = setInterval(() => void this.touch(), c.serverHeartbeatMs);
    heartbeat.unref();
    const watchdog = setInterval(() => this.watch(), statsIntervalMs(c.workerHeartbeatTimeoutMs));
    watchdog.unref();
    this.timers.push(heartbeat, watchdog);
    if (this.nodes) {
      await this.nodes.start();
      this.nodesReady = this.nodes.ready;
    }

    try {
      const failed = new Promise<never>((_, reject) => (this.startupFailure = reject));
      const handles = this.slots.map((_, slot) => (this.slots[slot] = this.spawn(slot)));
      await Promise.race([Promise.all(handles.map((h) => h.whenReady())), failed]);
      this.startupFailure = null;
      const server = createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socket));
      this.server = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(c.port, c.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.startupFailure = null;
      await this.stop();
      throw err;
    }
    this.state = 'ready';
    const address = this.server.address() as AddressInfo;
    this.logger.info({ address, workers: c.workers }, 'zenconn agent ready');
    return address;
  }

  /** Live figures: what `GET /agent/workers` answers. */
  workersView(): { agent: Record<string, unknown>; workers: ReturnType<Registry['workers']>; totals: Record<string, number> } {
    const now = Date.now();
    const workers = this.registry.workers(now);
    const totals = { workers: workers.length, sessions: 0, messagesInPerSec: 0, messagesOutPerSec: 0, rssBytes: 0 };
    for (const w of workers) {
      totals.sessions += w.sessions;
      totals.messagesInPerSec += w.messagesInPerSec;
      totals.messagesOutPerSec += w.messagesOutPerSec;
      totals.rssBytes += w.rssBytes;
    }
    return {
      agent: {
        id: this.serverId,
        pid: process.pid,
        state: this.state,
        startedAt: new Date(this.startedAt).toISOString(),
        uptimeMs: now - this.startedAt,
        workers: this.config.workers,
        rssBytes: process.memoryUsage.rss()
      },
      workers,
      totals
    };
  }

  /** Answers a worker's question for its HTTP client. */
  answer(query: AgentQuery): AgentAnswer {
    switch (query.kind) {
      case 'workers':
        return { status: 200, body: this.workersView() };
      case 'sessions':
        return { status: 200, body: this.registry.sessions(query) };
      case 'reload':
        if (this.state !== 'ready') return { status: 503, body: { error: `agent is ${this.state}` } };
        void this.reload();
        return { status: 202, body: { status: 'reloading', workers: this.config.workers } };
    }
  }

  /**
   * Rolling restart: for each slot in turn, start the replacement, wait until it is
   * ready, then drain the old worker (its sessions get 1001) and wait for its exit.
   * A second call while one runs returns the running one.
   */
  reload(): Promise<void> {
    if (this.reloading) return this.reloading;
    this.logger.info('rolling restart of the workers');
    this.reloading = (async () => {
      for (let slot = 0; slot < this.slots.length && this.state === 'ready'; slot++) {
        const old = this.slots[slot];
        if (old && this.config.workerPorts !== null) await this.releasePort(old);
        const fresh = this.spawn(slot);
        this.slots[slot] = fresh;
        if (!(await fresh.whenReady())) {
          // The old worker keeps the slot (its respawn timer finds the slot taken).
          if (old && !old.exited && this.slots[slot] === null) this.slots[slot] = old;
          this.logger.error({ slot }, 'replacement worker died before it was ready; rolling restart stopped');
          return;
        }
        if (old && !old.exited) await this.retire(old, undefined, true);
      }
      this.logger.info('rolling restart done');
    })().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  /** Forwards a signal (SIGUSR1: reopen the access log) to every worker. */
  signalWorkers(signal: NodeJS.Signals): void {
    for (const h of this.handles.values()) h.child.kill(signal);
  }

  /**
   * Drains: stops accepting, asks every worker to drain, waits for them (SIGKILL after
   * the shutdown deadline), closes out what is left and stops the agent's row.
   */
  async stop(): Promise<void> {
    if (this.state === 'draining' || this.state === 'closed') return;
    this.state = 'draining';
    this.server?.close();
    this.closePairServer();
    for (const s of this.waiting.splice(0)) s.destroy();
    for (const c of this.crashes) if (c.timer) clearTimeout(c.timer);
    const deadline = Date.now() + Math.min(this.config.shutdownTimeoutMs + 1000, 13000);
    await Promise.all([...this.handles.values()].map((h) => this.retire(h, deadline)));
    for (const t of this.timers) clearInterval(t);
    this.flushAll();
    await this.nodes?.close();
    await Promise.allSettled([...this.dbWork]);
    if (this.audit) {
      await this.audit.flush(Math.max(0, deadline - Date.now()) + 1000);
      await this.audit.close();
    }
    if (this.store) {
      try {
        await this.store.stopServer(this.serverId, new Date());
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'could not mark the agent stopped');
      }
      await this.store.close().catch(() => undefined);
    }
    this.state = 'closed';
    this.logger.info('zenconn agent stopped');
  }

  private spawn(slot: number): WorkerHandle {
    const key = this.nextKey++;
    const child = fork(this.entry, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    });
    const h = new WorkerHandle(key, slot, child, (w) => this.markDirty(w));
    const peers = [...this.handles.values()].filter((p) => !p.exited);
    this.handles.set(key, h);
    this.registry.addWorker(key, slot, child.pid ?? 0);
    this.router.addWorker(h);
    if (this.nodes) h.push({ t: 'bus-ready', ready: this.nodesReady });
    const init: WorkerInit = {
      t: 'init',
      config: { ...this.config },
      slot,
      parentId: this.serverId,
      statsIntervalMs: statsIntervalMs(this.config.workerHeartbeatTimeoutMs),
      peers: peers.map((p) => p.key)
    };
    child.send(init);
    for (const p of peers) this.link(h, p);
    child.on('message', (m: WorkerMessage) => this.onWorkerMessage(h, m));
    child.on('error', (err) => this.logger.error({ err, slot, pid: child.pid }, 'worker process error'));
    child.once('exit', (code, signal) => this.onWorkerExit(h, code, signal));
    this.logger.info({ slot, pid: child.pid }, 'worker started');
    return h;
  }

  private onWorkerMessage(h: WorkerHandle, message: WorkerMessage): void {
    h.lastSeen = Date.now();
    if (message.t !== 'batch') return;
    for (const item of message.items) this.onItem(h, item);
  }

  private onItem(h: WorkerHandle, item: WorkerItem): void {
    switch (item.t) {
      case 'publish':
        // The other workers got it over their links; the other nodes get it from here:
        // decoded once, encoded by the Redis bus.
        this.nodes?.publish(deserialize(item.payload) as BusMessage);
        return;
      case 'count':
        this.router.setCount(h.key, item.channel, item.count);
        this.nodes?.setLocalCount(item.channel, this.router.total(item.channel));
        return;
      case 'sync': {
        // The count before it is in the router already; the other nodes may need a Redis round trip.
        const wait = this.nodes?.whenSubscribed(item.channel) ?? null;
        if (wait === null) h.push({ t: 'synced', id: item.id });
        else void wait.then(() => h.push({ t: 'synced', id: item.id }));
        return;
      }
      case 'open':
        this.registry.sessionOpened(h.key, item.session);
        return;
      case 'close':
        this.registry.sessionClosed(h.key, item.session);
        return;
      case 'sub':
        this.registry.subscribed(h.key, item.session, item.channel);
        return;
      case 'unsub':
        this.registry.unsubscribed(h.key, item.session, item.channel);
        return;
      case 'settled':
        if (h.inflight > 0) h.inflight--;
        return;
      case 'stats':
        this.registry.setStats(h.key, item.stats);
        return;
      case 'hello':
        h.serverId = item.serverId;
        this.registry.setServerId(h.key, item.serverId);
        return;
      case 'ready':
        if (h.state !== 'starting') return;
        h.markReady();
        this.registry.setState(h.key, 'ready', item.port);
        this.logger.info({ slot: h.slot, pid: h.child.pid, workerId: h.serverId, directPort: item.port }, 'worker ready');
        this.serveWaiting();
        return;
      case 'request':
        h.push({ t: 'response', id: item.id, answer: this.answer(item.query) });
        return;
      case 'released':
        h.releasedWaiter?.();
        return;
      case 'stopping':
        this.setDraining(h);
        return;
    }
  }

  private onWorkerExit(h: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    this.handles.delete(h.key);
    this.dirty.delete(h);
    const lost = this.registry.removeWorker(h.key);
    for (const other of this.handles.values()) other.push({ t: 'peer-gone', key: h.key });
    for (const channel of this.router.removeWorker(h.key)) this.nodes?.setLocalCount(channel, this.router.total(channel));
    h.markExited();
    const crashed = !h.expectedExit;
    const log = { slot: h.slot, pid: h.child.pid, workerId: h.serverId, code, signal, lostSessions: lost.length };
    if (crashed) this.logger.error(log, 'worker died');
    else this.logger.info(log, 'worker exited');
    // Members elsewhere of a private channel learn that the lost sessions left. A worker
    // that crashed, or was killed at the drain deadline, cannot record it: the agent
    // writes the `left` rows and each lost session's `session.close` (1006) in the audit
    // trail. (One that exited by itself recorded its sessions' ends.)
    const at = new Date();
    const audit = crashed || signal !== null ? this.audit : null;
    for (const s of lost) {
      for (const channel of s.channels) {
        if (!channel.startsWith(PRIVATE_PREFIX)) continue;
        const data = { session: s.id, user: s.user };
        const message: BusMessage = { channel, frame: { type: 'left', channel, data }, exclude: null };
        this.router.publish(null, channel, serialize(message));
        this.nodes?.publish(message);
        const recipients = this.router.total(channel) + (this.nodes?.remoteCount(channel) ?? 0);
        audit?.record({ messageId: null, at, sessionId: s.id, userId: s.user, direction: 'out', type: 'left', channel, payload: data, recipients });
      }
      audit?.record({ messageId: null, at, sessionId: s.id, userId: s.user, direction: 'system', type: 'session.close', channel: null, payload: { code: CloseCode.ABNORMAL }, recipients: null });
    }
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
    if (this.startupFailure && this.state === 'starting') {
      this.startupFailure(new Error(`worker ${h.slot} exited during startup (${signal ?? `code ${code}`})`));
      return;
    }
    if (this.slots[h.slot] === h) {
      this.slots[h.slot] = null;
      if (crashed && this.state === 'ready') this.scheduleRespawn(h);
    }
  }

  private scheduleRespawn(dead: WorkerHandle): void {
    const slot = dead.slot;
    const c = this.crashes[slot]!;
    if (Date.now() - dead.startedAt >= STABLE_AFTER_MS) c.consecutive = 0;
    c.consecutive++;
    const delay = restartDelayMs(c.consecutive);
    if (c.consecutive > 1) this.logger.error({ slot, crashes: c.consecutive, delayMs: delay }, 'worker keeps crashing; restarting it with backoff');
    c.timer = setTimeout(() => {
      c.timer = null;
      if (this.state === 'ready' && this.slots[slot] === null) this.slots[slot] = this.spawn(slot);
    }, delay);
  }

  /** Kills workers whose heartbeat stopped (a blocked event loop, a stopped process); relays the bus's readiness. */
  private watch(): void {
    const now = Date.now();
    if (this.nodes && this.nodes.ready !== this.nodesReady) {
      this.nodesReady = this.nodes.ready;
      for (const h of this.handles.values()) h.push({ t: 'bus-ready', ready: this.nodesReady });
    }
    for (const h of this.handles.values()) {
      const limit = h.state === 'starting' ? Math.max(STARTUP_SILENCE_MS, this.config.workerHeartbeatTimeoutMs) : this.config.workerHeartbeatTimeoutMs;
      if (h.killed || now - h.lastSeen <= limit) continue;
      h.killed = true;
      this.logger.error({ slot: h.slot, pid: h.child.pid, workerId: h.serverId, silentMs: now - h.lastSeen }, 'worker heartbeat stopped; killing it');
      h.child.kill('SIGKILL');
    }
  }

  private setDraining(h: WorkerHandle): void {
    h.state = 'draining';
    this.registry.setState(h.key, 'draining');
  }

  /**
   * Asks a worker to drain and waits for its exit; SIGKILL at `deadline`. With `settle`,
   * first waits (up to HANDOFF_SETTLE_MS) until the connections already handed to it have
   * sent their first request, so that a client that connected a moment ago is not
   * refused by a worker that started draining before its request arrived.
   */
  private async retire(h: WorkerHandle, deadline = Date.now() + this.config.shutdownTimeoutMs + 1000, settle = false): Promise<void> {
    if (h.exited) return;
    h.expectedExit = true;
    this.setDraining(h);
    if (settle) {
      const until = Date.now() + HANDOFF_SETTLE_MS;
      while (h.inflight > 0 && !h.exited && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    }
    h.push({ t: 'drain' });
    const timer = setTimeout(() => {
      if (h.exited) return;
      this.logger.error({ slot: h.slot, pid: h.child.pid }, 'worker did not drain in time; killing it');
      h.child.kill('SIGKILL');
    }, Math.max(0, deadline - Date.now()));
    await h.whenExited();
    clearTimeout(timer);
  }

  /** Has the worker close its direct port so that its replacement can listen on it. */
  private async releasePort(h: WorkerHandle): Promise<void> {
    if (h.exited) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 5000);
      function done(): void {
        clearTimeout(timer);
        h.releasedWaiter = null;
        resolve();
      }
      h.releasedWaiter = done;
      void h.whenExited().then(done);
      h.push({ t: 'release-port' });
    });
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    if (this.state !== 'ready') {
      socket.destroy();
      return;
    }
    const w = this.pick();
    if (w === null) {
      // Every worker is restarting: hold the connection (paused) until one is ready.
      if (this.waiting.length >= MAX_WAITING_SOCKETS) this.waiting.shift()!.destroy();
      this.waiting.push(socket);
      socket.once('close', () => {
        const i = this.waiting.indexOf(socket);
        if (i >= 0) this.waiting.splice(i, 1);
      });
      return;
    }
    this.handOff(w, socket);
  }

  /**
   * The ready worker with the least load: sessions plus connections not yet settled.
   * During a rolling restart the old worker of a slot stays a candidate until its
   * replacement is ready.
   */
  private pick(): WorkerHandle | null {
    let best: WorkerHandle | null = null;
    let bestLoad = Infinity;
    for (const h of this.handles.values()) {
      if (h.state !== 'ready' || !h.child.connected) continue;
      const load = this.registry.sessionCount(h.key) + h.inflight;
      if (load < bestLoad) {
        best = h;
        bestLoad = load;
      }
    }
    return best;
  }

  private handOff(w: WorkerHandle, socket: Socket): void {
    const conn = this.nextConn++;
    w.inflight++;
    try {
      w.child.send({ t: 'conn', conn }, socket, (err) => {
        if (!err) return;
        if (w.inflight > 0) w.inflight--;
        socket.destroy();
      });
    } catch {
      if (w.inflight > 0) w.inflight--;
      socket.destroy();
    }
  }

  private serveWaiting(): void {
    while (this.waiting.length > 0) {
      const w = this.pick();
      if (w === null) return;
      const s = this.waiting.shift()!;
      if (!s.destroyed) this.handOff(w, s);
    }
  }

  private markDirty(h: WorkerHandle): void {
    this.dirty.add(h);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flushAll(false));
  }

  /**
   * Sends each dirty worker its batch. A batch of deliveries alone waits until
   * PUBLISH_COALESCE_MS after that worker's previous one (fewer wake-ups under a stream
   * of broadcasts); `all` sends everything now.
   */
  private flushAll(all = true): void {
    this.flushScheduled = false;
    const now = performance.now();
    let wait = Infinity;
    for (const h of this.dirty) {
      const left = h.lastFlushAt + PUBLISH_COALESCE_MS - now;
      if (!all && !h.urgent && left > 0) {
        wait = Math.min(wait, left);
        continue;
      }
      h.flush();
      this.dirty.delete(h);
    }
    if (wait !== Infinity && !this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(() => this.flushAll(false), wait);
    }
  }

  /**
   * Links workers `a` and `b` directly: a connected pair of Unix-domain sockets, made by
   * connecting to the agent's own pair server, one end handed to each (the agent keeps
   * neither). Pairs are made one at a time, so an accepted end is its connecting end's
   * pair. The pair server listens only while links are being made (a socket in a fresh
   * directory only this user can enter, removed once the last pending link is made), so
   * an agent that is killed leaves nothing behind but in that moment. A worker that exits
   * before it gets its end leaves the other one's end closed, which it reads as "gone".
   */
  private link(a: WorkerHandle, b: WorkerHandle): void {
    this.pendingLinks++;
    this.pairChain = this.pairChain.then(async () => {
      try {
        if (this.state === 'draining' || this.state === 'closed' || a.exited || b.exited) return;
        if (this.pairServer === null) await this.openPairServer();
        const pair = await this.makePair(this.pairServer!.address() as string);
        this.handPeer(a, b.key, pair[0]);
        this.handPeer(b, a.key, pair[1]);
      } catch (err) {
        // While stopping, the pair server is gone: nothing to say.
        if (this.state !== 'draining' && this.state !== 'closed') this.logger.error({ err: (err as Error).message, a: a.slot, b: b.slot }, 'could not link two workers');
      } finally {
        this.pairAccepted = null;
        if (--this.pendingLinks === 0) this.closePairServer();
      }
    });
  }

  /** Connects to the pair server at `path`: resolves with both ends once both are up. */
  private makePair(path: string): Promise<[Socket, Socket]> {
    return new Promise<[Socket, Socket]>((resolve, reject) => {
      let accepted: Socket | null = null;
      let connected = false;
      const client = connect({ path, allowHalfOpen: false }, () => {
        connected = true;
        settle();
      });
      const timer = setTimeout(() => {
        client.destroy();
        accepted?.destroy();
        reject(new Error('pair connection timed out'));
      }, 5000);
      const settle = (): void => {
        if (!connected || accepted === null) return;
        clearTimeout(timer);
        client.removeAllListeners('error');
        client.pause();
        resolve([client, accepted]);
      };
      client.once('error', (err) => {
        clearTimeout(timer);
        accepted?.destroy();
        reject(err);
      });
      this.pairAccepted = (socket) => {
        accepted = socket;
        settle();
      };
    });
  }

  private handPeer(h: WorkerHandle, key: number, socket: Socket): void {
    socket.on('error', () => socket.destroy());
    if (h.exited || !h.child.connected) {
      socket.destroy();
      return;
    }
    try {
      h.child.send({ t: 'peer', key }, socket, (err) => {
        if (err) socket.destroy();
      });
    } catch {
      socket.destroy();
    }
  }

  private async openPairServer(): Promise<void> {
    this.pairDir = mkdtempSync(join(tmpdir(), 'zenconn-'));
    const server = createServer({ pauseOnConnect: true }, (socket) => {
      const take = this.pairAccepted;
      this.pairAccepted = null;
      if (take === null) socket.destroy();
      else take(socket);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(join(this.pairDir!, 'peers.sock'), () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.closePairServer();
      throw err;
    }
    this.pairServer = server;
  }

  private closePairServer(): void {
    this.pairServer?.close();
    this.pairServer = null;
    if (this.pairDir !== null) rmSync(this.pairDir, { recursive: true, force: true });
    this.pairDir = null;
  }

  /** Refreshes the agent's `last_seen_at`; an outage is logged once, not every beat. */
  private async touch(): Promise<void> {
    try {
      await this.store.touchServer(this.serverId, new Date());
      if (!this.dbReachable) this.logger.info('database reachable again');
      this.dbReachable = true;
    } catch (err) {
      if (this.dbReachable) this.logger.warn({ err: (err as Error).message }, 'database unreachable; the agent heartbeat is not recorded');
      this.dbReachable = false;
    }
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'database write failed'));
    this.dbWork.add(q);
    void q.finally(() => this.dbWork.delete(q));
  }
}
