import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { SharedPort } from './shared-port.js';
import { socketFromHandle } from './socket-handle.js';
import { withTimeout } from '../timeout.js';
import type { WorkerHandle } from './worker-handle.js';

/** How long `open` waits for the first worker to listen on the shared socket before it says so and goes on. */
const FIRST_LISTEN_TIMEOUT_MS = 10_000;

/**
 * The agent's public port, in either `--accept` mode:
 *
 * - `agent`: a listener that accepts each connection paused and gives it to the agent to
 *   place (placement.ts);
 * - `shared`: a socket bound here (shared-port.ts) that every ready worker listens on
 *   (`share`); the agent only sees the connections a worker at its share forwards
 *   (`forwarded`).
 */
export class AgentPort {
  private server: Server | null = null;
  private shared: SharedPort | null = null;

  /** Resolves `open`'s wait for the first worker to listen (`shared`). */
  private onFirstListening: (() => void) | null = null;

  constructor(
    private readonly mode: 'agent' | 'shared',
    private readonly onConnection: (socket: Socket, from: WorkerHandle | null) => void,
    private readonly logger: Logger
  ) {}

  /** `shared`: binds now, before the workers start, so they learn the port with `init` and a port in use fails before any fork. */
  bindEarly(host: string, port: number): number | null {
    if (this.mode !== 'shared') return null;
    this.shared = SharedPort.bind(host, port);
    return this.shared.address.port;
  }

  /**
   * Opens the port for connections once every worker is ready: `agent` listens, `shared`
   * gives the socket to each worker and resolves once one of them listens on it (until
   * then the bound socket refuses connections), or after FIRST_LISTEN_TIMEOUT_MS.
   */
  async open(host: string, port: number, backlog: number, workers: Iterable<WorkerHandle>): Promise<AddressInfo> {
    if (this.shared !== null) {
      const listening = new Promise<void>((resolve) => (this.onFirstListening = resolve));
      for (const h of workers) this.share(h);
      await withTimeout(listening, FIRST_LISTEN_TIMEOUT_MS, 'a worker listening on the shared port').catch((err: unknown) => this.logger.error({ err }, 'no worker listens on the shared port yet'));
      return this.shared.address;
    }
    const server = createServer({ pauseOnConnect: true }, (socket) => this.onConnection(socket, null));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  /** `shared`: a ready worker listens on the port too (a replacement as soon as it is ready). */
  share(h: WorkerHandle): void {
    const handle = this.shared?.handle;
    if (handle === null || handle === undefined || h.exited || !h.child.connected) return;
    try {
      h.child.send({ t: 'listen' }, handle as Parameters<typeof h.child.send>[1]);
    } catch (err) {
      this.logger.error({ err, slot: h.slot }, 'could not give the shared port to a worker');
    }
  }

  /** `shared`: a worker says it listens on the socket now. */
  workerListening(): void {
    this.onFirstListening?.();
    this.onFirstListening = null;
  }

  /** `shared`: a connection worker `from` will not serve (at its share): its raw handle, unread, wrapped paused as this port's own listener would give it. */
  forwarded(from: WorkerHandle, handle: unknown): void {
    if (!handle) return;
    this.onConnection(socketFromHandle(handle, true), from);
  }

  /** Stops accepting (`shared`: the agent's copy; each worker closes its own when it drains). */
  close(): void {
    this.server?.close();
    this.shared?.close();
  }
}
