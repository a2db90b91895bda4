import { fork } from 'node:child_process';
import type { Logger } from 'pino';
import type { Config } from '../config/options.js';
import type { WorkerMessage } from './ipc-messages.js';
import { WorkerHandle } from './worker-handle.js';
import { HANDOFF_SETTLE_MS } from './ipc-port.js';

/** Restart delay cap of a worker that keeps crashing. */
export const MAX_RESTART_DELAY_MS = 30000;
/** A worker that ran this long before it died starts the backoff from zero again. */
export const STABLE_AFTER_MS = 30000;
/** A starting worker may be silent this long (module loading, database migration) before the watchdog kills it. */
const STARTUP_SILENCE_MS = 30000;
/** How long a worker may take to close its direct port when asked. */
const RELEASE_PORT_TIMEOUT_MS = 5000;

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

/**
 * How long the agent waits for draining workers before it kills them: their own graceful
 * stop deadline (`--shutdown-timeout-ms`, which each worker also applies to itself) and
 * a second for their last words.
 */
export function workersStopMs(shutdownTimeoutMs: number): number {
  return shutdownTimeoutMs + 1000;
}

/** Room after the workers' deadline for the agent's own flush (audit, rows) before `zenconn agent` exits anyway. */
const AGENT_FLUSH_MS = 3500;

/** When `zenconn agent` exits anyway after SIGTERM: the workers' wait, then the agent's own flush. */
export function agentForceExitMs(shutdownTimeoutMs: number): number {
  return workersStopMs(shutdownTimeoutMs) + AGENT_FLUSH_MS;
}

/** What the supervisor asks of the agent it works for. */
export interface SupervisorHooks {
  /** Whether the agent is ready (crashed workers are replaced, and reloads go on, only then). */
  ready(): boolean;
  /** A worker was forked: wire it (registry, routing, `init`, links to `peers`). */
  started(h: WorkerHandle, peers: WorkerHandle[]): void;
  /** A message from a worker; `handle`: what travelled with it (a forwarded connection's). */
  message(h: WorkerHandle, message: WorkerMessage, handle: unknown): void;
  /** A worker exited (it has left the handles): clean up after it. `crashed`: it was not asked to stop. */
  exited(h: WorkerHandle, crashed: boolean, code: number | null, signal: NodeJS.Signals | null): void;
  /** A worker is draining (asked to, or by itself). */
  draining(h: WorkerHandle): void;
}

/**
 * The worker processes of an agent, one per slot: fork, watchdog, restart with backoff,
 * and the rolling restart.
 *
 * - A worker that exits unasked is replaced at once, then with exponential backoff
 *   (1 s, 2 s, … capped at 30 s) while it keeps crashing.
 * - One whose heartbeat is silent for `workerHeartbeatTimeoutMs` is killed (SIGKILL)
 *   and replaced.
 * - `reload()`: one slot at a time, the replacement is ready before the old worker
 *   drains (1001), so the port keeps answering.
 */
export class Supervisor {
  private readonly handles = new Map<number, WorkerHandle>();
  /** The current worker of each slot (a replacement takes the slot before the old one drains). */
  private readonly slots: Array<WorkerHandle | null>;
  private readonly crashes: Array<{ consecutive: number; timer: NodeJS.Timeout | null }>;
  private nextKey = 1;
  /** When the watchdog last looked (0: not yet). */
  private lastWatchAt = 0;
  private reloading: Promise<void> | null = null;
  private startupFailure: ((err: Error) => void) | null = null;

  constructor(
    private readonly config: Readonly<Config>,
    private readonly logger: Logger,
    /** The worker main to fork. */
    private readonly entry: string,
    /** Puts a worker in the agent's next flush turn. */
    private readonly markDirty: (h: WorkerHandle) => void,
    private readonly hooks: SupervisorHooks
  ) {
    this.slots = new Array<WorkerHandle | null>(config.workers).fill(null);
    this.crashes = this.slots.map(() => ({ consecutive: 0, timer: null }));
  }

  /** The workers alive now. */
  workers(): IterableIterator<WorkerHandle> {
    return this.handles.values();
  }

  /** Starts a worker in every slot; resolves once all are ready, rejects when one dies first. */
  async startAll(): Promise<void> {
    try {
      const failed = new Promise<never>((_, reject) => (this.startupFailure = reject));
      const handles = this.slots.map((_, slot) => (this.slots[slot] = this.spawn(slot)));
      await Promise.race([Promise.all(handles.map((h) => h.whenReady())), failed]);
    } finally {
      this.startupFailure = null;
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
      for (let slot = 0; slot < this.slots.length && this.hooks.ready(); slot++) {
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

  /** Forwards a signal to every worker. */
  signal(signal: NodeJS.Signals): void {
    for (const h of this.handles.values()) h.child.kill(signal);
  }

  /** Stops replacing workers, has every worker drain and waits for them (SIGKILL at `deadline`). */
  async stopAll(deadline: number): Promise<void> {
    for (const c of this.crashes) if (c.timer) clearTimeout(c.timer);
    await Promise.all([...this.handles.values()].map((h) => this.retire(h, deadline)));
  }

  /**
   * The watchdog: kills workers whose heartbeat stopped (a blocked event loop, a stopped
   * process). Silence counts only while the agent was looking: a tick that comes late
   * means the agent's own loop was held up (a long turn, a stopped process, a starved
   * machine), and what the workers sent meanwhile is still unread in the pipes (timers run
   * before I/O), so the late part is not held against them. Without this, an agent held up
   * for the timeout killed every worker at once (seen during the close of 100,000 sessions).
   */
  watch(now = Date.now()): void {
    const interval = statsIntervalMs(this.config.workerHeartbeatTimeoutMs);
    const late = this.lastWatchAt === 0 ? 0 : now - this.lastWatchAt - interval;
    this.lastWatchAt = now;
    if (late > interval) this.logger.warn({ lateMs: late }, "the agent's own event loop was held up; its workers' silence meanwhile is not counted");
    for (const h of this.handles.values()) {
      if (late > interval) h.lastSeen = Math.min(now, h.lastSeen + late);
      const limit = h.state === 'starting' ? Math.max(STARTUP_SILENCE_MS, this.config.workerHeartbeatTimeoutMs) : this.config.workerHeartbeatTimeoutMs;
      if (h.killed || now - h.lastSeen <= limit) continue;
      h.killed = true;
      this.logger.error({ slot: h.slot, pid: h.child.pid, workerId: h.serverId, silentMs: now - h.lastSeen }, 'worker heartbeat stopped; killing it');
      h.child.kill('SIGKILL');
    }
  }

  /** Marks a worker draining (asked to, or by itself). */
  setDraining(h: WorkerHandle): void {
    h.state = 'draining';
    this.hooks.draining(h);
  }

  private spawn(slot: number): WorkerHandle {
    const key = this.nextKey++;
    const child = fork(this.entry, [], {
      execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS, this.config.workerSemiSpaceMib),
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    });
    const h = new WorkerHandle(key, slot, child, this.markDirty);
    const peers = [...this.handles.values()].filter((p) => !p.exited);
    this.handles.set(key, h);
    this.hooks.started(h, peers);
    child.on('message', (m: WorkerMessage, handle: unknown) => {
      h.lastSeen = Date.now();
      this.hooks.message(h, m, handle);
    });
    child.on('error', (err) => this.logger.error({ err, slot, pid: child.pid }, 'worker process error'));
    child.once('exit', (code, signal) => this.onExit(h, code, signal));
    this.logger.info({ slot, pid: child.pid }, 'worker started');
    return h;
  }

  private onExit(h: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    this.handles.delete(h.key);
    const crashed = !h.expectedExit;
    h.markExited();
    this.hooks.exited(h, crashed, code, signal);
    if (this.startupFailure) {
      this.startupFailure(new Error(`worker ${h.slot} exited during startup (${signal ?? `code ${code}`})`));
      return;
    }
    if (this.slots[h.slot] === h) {
      this.slots[h.slot] = null;
      if (crashed && this.hooks.ready()) this.scheduleRespawn(h);
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
      if (this.hooks.ready() && this.slots[slot] === null) this.slots[slot] = this.spawn(slot);
    }, delay);
  }

  /**
   * Asks a worker to drain and waits for its exit; SIGKILL at `deadline`. With `settle`,
   * first waits (up to HANDOFF_SETTLE_MS) until the connections already handed to it have
   * sent their first request, so that a client that connected a moment ago is not
   * refused by a worker that started draining before its request arrived.
   */
  private async retire(h: WorkerHandle, deadline = Date.now() + workersStopMs(this.config.shutdownTimeoutMs), settle = false): Promise<void> {
    if (h.exited) return;
    h.expectedExit = true;
    this.setDraining(h);
    if (settle) await h.whenSettled(HANDOFF_SETTLE_MS);
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
      const timer = setTimeout(done, RELEASE_PORT_TIMEOUT_MS);
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
}

/**
 * The node flags of a worker: the agent's own, plus `--max-semi-space-size=<semiSpaceMib>`
 * unless that is 0 or the flag is given already (to the agent or in NODE_OPTIONS). A small
 * young generation is scavenged more often, so the dead socket read buffers (64 KiB each,
 * malloc'd, freed only when their ArrayBuffer is collected) go back to malloc before the
 * next ones are taken, rather than thousands at once interleaved with live allocations,
 * which left the malloc heap fragmented and grown after every connect burst (#15).
 */
export function workerExecArgv(agentExecArgv: readonly string[], nodeOptions: string | undefined, semiSpaceMib: number): string[] {
  const given = [...agentExecArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => a.startsWith('--max-semi-space-size'));
  return semiSpaceMib === 0 || given ? [...agentExecArgv] : [...agentExecArgv, `--max-semi-space-size=${semiSpaceMib}`];
}
