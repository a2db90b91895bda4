import { createServer, type Server, type Socket } from 'node:net';
import type { NativeHandle } from './shared-port.js';
import { destroyOnError } from '../transport/transport.js';

/** An accepted socket before its first request: its SharedAccept, for the one shared close listener (no closure per socket, #15). */
const SHARED_ACCEPT = Symbol('zenconn.sharedAccept');
type Unsettled = Socket & { [SHARED_ACCEPT]?: SharedAccept };

function onUnsettledClose(this: Unsettled): void {
  this[SHARED_ACCEPT]?.settled(this);
}

export interface SharedAcceptOptions {
  /** Connections this worker takes from the shared port before it sends the next ones to the agent (0 = no limit). */
  share: number;
  /** This worker's open connections now. */
  open: () => number;
  /** Serves a connection here (the node's HTTP server); it is paused. */
  accept: (socket: Socket) => void;
  /** Sends a connection, paused and unread, to the agent to place (this worker is at its share). */
  forward: (socket: Socket) => void;
  /** The listen backlog (`--listen-backlog`): the last worker to listen sets it for the shared socket. */
  backlog: number;
  /** Where a failure of the listener is reported. */
  onError: (err: Error) => void;
}

/**
 * A worker's side of `--accept shared` (shared-port.ts): it listens on the agent's port
 * itself, so the kernel gives it connections directly. Each one arrives paused; under
 * the worker's share of `--max-connections` it is served here, at or over it the worker
 * sends it on to the agent, which places it on the least-loaded other worker or refuses it
 * as over the agent-wide cap. Those placed connections come back the way `--accept agent`
 * hands them over; a worker's own cap is its share (its Admission), so the workers
 * together never hold more than `--max-connections`, even while the agent's view of their
 * sessions lags (it may then refuse one a moment early, never admit one over).
 *
 * It also keeps the connections it took that have not made their first request: a
 * draining worker closes its listener and waits for them (`whenSettled`), so a client
 * that connected a moment before is not refused by the drain.
 */
export class SharedAccept {
  /** Connections forwarded to the agent since start (`/agent/workers` shows them). */
  forwarded = 0;
  private server: Server | null = null;
  private readonly unsettled = new Set<Socket>();
  private settleWaiters: Array<() => void> = [];

  constructor(private readonly o: SharedAcceptOptions) {}

  /** Listens on the agent's shared handle, then `onListening` (a second `listen` while listening is ignored). */
  listen(handle: NativeHandle, onListening: () => void = () => undefined): void {
    if (this.server !== null) return;
    const server = createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socket));
    server.on('error', (err) => this.o.onError(err));
    this.server = server;
    server.listen(handle as Parameters<Server['listen']>[0], this.o.backlog, onListening);
  }

  /** The connection made its first request (or upgrade): a drain need not wait for it. */
  settled(socket: Socket): void {
    if (!this.unsettled.delete(socket)) return;
    socket.removeListener('close', onUnsettledClose);
    if (this.unsettled.size === 0) for (const w of this.settleWaiters.splice(0)) w();
  }

  /** Stops taking connections (this process's copy of the socket; the others keep theirs). */
  close(): void {
    this.server?.close();
  }

  /** Resolves once every connection taken here made its first request or closed, or after `timeoutMs`. */
  whenSettled(timeoutMs: number): Promise<void> {
    if (this.unsettled.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.settleWaiters = this.settleWaiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.settleWaiters.push(done);
    });
  }

  private onConnection(socket: Socket): void {
    socket.on('error', destroyOnError);
    if (this.o.share > 0 && this.o.open() >= this.o.share) {
      this.forwarded++;
      this.o.forward(socket);
      return;
    }
    this.unsettled.add(socket);
    (socket as Unsettled)[SHARED_ACCEPT] = this;
    socket.on('close', onUnsettledClose);
    this.o.accept(socket);
  }
}

/**
 * Worker `slot`'s share of the agent-wide `--max-connections` over `workers` (0 = no cap):
 * the cap split as evenly as it goes, the first `cap % workers` slots one more, so the
 * shares add up to the cap exactly.
 */
export function workerShare(maxConnections: number, workers: number, slot: number): number {
  if (maxConnections === 0) return 0;
  const n = Math.max(1, workers);
  return Math.floor(maxConnections / n) + (slot % n < maxConnections % n ? 1 : 0);
}
