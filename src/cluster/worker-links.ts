import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { SocketPairMaker } from './socket-pair.js';
import type { WorkerHandle } from './worker-handle.js';

/**
 * The direct links between the agent's workers: every two workers get a connected
 * socket pair (socket-pair.ts), one end handed to each; the agent keeps neither.
 */
export class WorkerLinks {
  private readonly pairs = new SocketPairMaker();

  /** `stopping()`: the agent is draining or closed (no new links, no errors to say). */
  constructor(
    private readonly stopping: () => boolean,
    private readonly logger: Logger
  ) {}

  /**
   * Links workers `a` and `b` directly: a connected socket pair, one end handed to each
   * (the agent keeps neither). A worker that exits before it gets its end leaves the
   * other one's end closed, which it reads as "gone".
   */
  link(a: WorkerHandle, b: WorkerHandle): void {
    this.pairs.enqueue(async () => {
      try {
        if (this.stopping() || a.exited || b.exited) return;
        const pair = await this.pairs.make();
        this.handPeer(a, b.key, pair[0]);
        this.handPeer(b, a.key, pair[1]);
      } catch (err) {
        // While stopping, the pair server is gone: nothing to say.
        if (!this.stopping()) this.logger.error({ err: (err as Error).message, a: a.slot, b: b.slot }, 'could not link two workers');
      }
    });
  }

  /** Stops making pairs (the agent is stopping). */
  close(): void {
    this.pairs.close();
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
}
