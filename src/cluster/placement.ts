import type { Socket } from 'node:net';
import type { WorkerHandle } from './worker-handle.js';

/** Sockets waiting for a ready worker (all of them restarting) before new ones are refused. */
export const MAX_WAITING_SOCKETS = 1024;

/**
 * Which worker gets a connection: the ready worker with the least load (sessions plus
 * connections handed over and not yet settled). The socket, accepted paused, travels to
 * it as an IPC handle. While no worker is ready (all restarting) sockets wait, paused,
 * up to MAX_WAITING_SOCKETS (the oldest is dropped beyond it).
 */
export class Placement {
  private readonly waiting: Socket[] = [];
  private nextConn = 1;

  constructor(
    /** The workers alive now. */
    private readonly workers: () => Iterable<WorkerHandle>,
    /** A worker's sessions (from the registry). */
    private readonly sessionCount: (h: WorkerHandle) => number
  ) {}

  /** Places an accepted socket (or holds it until a worker is ready). */
  place(socket: Socket): void {
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
  private pick(): WorkerHandle | null {
    let best: WorkerHandle | null = null;
    let bestLoad = Infinity;
    for (const h of this.workers()) {
      if (h.state !== 'ready' || !h.child.connected) continue;
      const load = this.sessionCount(h) + h.inflight;
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
        w.settleOne();
        socket.destroy();
      });
    } catch {
      w.settleOne();
      socket.destroy();
    }
  }
}
