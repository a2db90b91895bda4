import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { WorkerHandle } from './worker-handle.js';

/** Sockets waiting for a ready worker (all of them restarting) before new ones are refused. */
export const MAX_WAITING_SOCKETS = 1024;

/** The answer of a connection over the agent's cap, on plain HTTP (under TLS it is closed). */
const OVER_CAP_ANSWER =
  'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n{"error":"too many connections"}';

/** The agent-wide connection cap (`--max-connections`). */
export interface PlacementCap {
  /** 0 = no cap. */
  maxConnections: number;
  /** The workers speak TLS: the agent cannot answer, it closes the connection. */
  tls: boolean;
  /** Where refusals are logged (at most every 10 s, with the count since the last line). */
  logger: Pick<Logger, 'warn'> | null;
}

/**
 * Which worker gets a connection: the ready worker with the least load (sessions plus
 * connections handed over and not yet settled). The socket, accepted paused, travels to
 * it as an IPC handle. While no worker is ready (all restarting) sockets wait, paused,
 * up to MAX_WAITING_SOCKETS (the oldest is dropped beyond it).
 */
export class Placement {
  /** Connections refused by the cap (`GET /agent/workers` shows it as `agent.refusedConnections`). */
  refused = 0;
  private readonly waiting: Socket[] = [];
  private nextConn = 1;
  private refusedLoggedAt = -Infinity;
  private refusedUnlogged = 0;

  constructor(
    /** The workers alive now. */
    private readonly workers: () => Iterable<WorkerHandle>,
    /** A worker's sessions (from the registry). */
    private readonly sessionCount: (h: WorkerHandle) => number,
    private readonly cap: PlacementCap = { maxConnections: 0, tls: false, logger: null }
  ) {}

  /**
   * The agent's connections as it knows them: every worker's sessions, the connections
   * handed over and not yet settled, and those waiting. (A plain HTTP request is counted
   * while it is handed over; each worker also caps its own connections.)
   */
  get load(): number {
    let n = this.waiting.length;
    for (const h of this.workers()) n += this.sessionCount(h) + h.inflight;
    return n;
  }

  /**
   * Places an accepted socket (or holds it until a worker is ready); over the cap, refuses
   * it. `from`: the worker that forwarded it, at its share (`--accept shared`): it goes to
   * another one, or is refused when there is none.
   */
  place(socket: Socket, from: WorkerHandle | null = null): void {
    const w = this.pick(from);
    if ((this.cap.maxConnections > 0 && this.load >= this.cap.maxConnections) || (from !== null && w === null)) {
      this.countRefused();
      if (this.cap.tls) {
        socket.destroy();
        return;
      }
      // Read (and drop) the request so that closing does not reset the connection under the answer.
      socket.on('data', () => undefined);
      socket.resume();
      socket.end(OVER_CAP_ANSWER);
      setTimeout(() => socket.destroy(), 5000).unref();
      return;
    }
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

  private countRefused(): void {
    this.refused++;
    this.refusedUnlogged++;
    const now = performance.now();
    if (now - this.refusedLoggedAt < 10_000) return;
    this.cap.logger?.warn({ reason: 'maxConnections', refused: this.refusedUnlogged, total: this.refused, maxConnections: this.cap.maxConnections }, 'connections refused by the agent-wide cap');
    this.refusedLoggedAt = now;
    this.refusedUnlogged = 0;
  }

  /** A worker became ready: the waiting sockets go out. */
  serveWaiting(): void {
    while (this.waiting.length > 0) {
      const w = this.pick();
      if (w === null) return;
      const s = this.waiting.shift()!;
      if (!s.destroyed) this.handOff(w, s);
    }
  }

  /** Drops the waiting sockets (stopping). */
  dropWaiting(): void {
    for (const s of this.waiting.splice(0)) s.destroy();
  }

  /**
   * The ready worker with the least load. During a rolling restart the old worker of a
   * slot stays a candidate until its replacement is ready.
   */
  private pick(except: WorkerHandle | null = null): WorkerHandle | null {
    let best: WorkerHandle | null = null;
    let bestLoad = Infinity;
    for (const h of this.workers()) {
      if (h === except || h.state !== 'ready' || !h.child.connected) continue;
      const load = this.sessionCount(h) + h.inflight;
      if (load < bestLoad) {
        best = h;
        bestLoad = load;
      }
    }
    return best;
  }

  private handOff(w: WorkerHandle, socket: Socket): void {
    w.handOver(this.nextConn++, socket);
  }
}
