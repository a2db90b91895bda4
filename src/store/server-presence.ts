import { hostname } from 'node:os';
import type { ServerRecord, Store, StoreLogger } from './store.js';

export interface ServerPresenceOptions {
  store: Store;
  logger: StoreLogger;
  /** This process's row; hostname, pid and start time are filled in at `register`. */
  server: Pick<ServerRecord, 'id' | 'role' | 'parentId' | 'address'>;
  /** A server silent this long is dead (closed out at start, and by the sweep). */
  staleServerMs: number;
  /** Interval of the heartbeat (`last_seen_at`). */
  heartbeatMs: number;
  /**
   * Whether the heartbeat also closes out vanished servers, every `staleServerMs / 2`
   * (a node of a shared database that died is closed out by the others). The agent
   * leaves that to the nodes.
   */
  sweepStale: boolean;
}

/**
 * This process's row in `servers`, for a node and for the agent alike: closes out the
 * servers that died without stopping and registers this one, keeps `last_seen_at`
 * fresh, and marks the row stopped. A database outage is logged once, not every beat.
 */
export class ServerPresence {
  private timer: NodeJS.Timeout | null = null;
  private reachable = true;
  private lastSweep = 0;

  constructor(private readonly options: ServerPresenceOptions) {}

  /** Closes out dead servers, then writes this server's row (throws if the database does). */
  async register(now = new Date()): Promise<void> {
    const { store, logger, staleServerMs, server } = this.options;
    const closed = await store.closeOutStaleServers(new Date(now.getTime() - staleServerMs), now);
    if (closed.servers > 0) logger.warn(closed, 'closed out servers that died without stopping');
    await store.registerServer({ ...server, hostname: hostname(), pid: process.pid, startedAt: now });
  }

  /**
   * Records the address the server is bound to (`http://HOST:PORT` with the bound port,
   * not the configured 0). Throws if the database does.
   */
  async setAddress(address: string): Promise<void> {
    this.options.server.address = address;
    await this.options.store.setServerAddress(this.options.server.id, address);
  }

  /** Starts the heartbeat (the timer does not keep the process alive). */
  startHeartbeat(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.timer.unref();
  }

  stopHeartbeat(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One heartbeat: refresh `last_seen_at` (and sweep, when asked to). Never rejects. */
  async beat(): Promise<void> {
    const { store, logger, staleServerMs, server } = this.options;
    try {
      const now = new Date();
      await store.touchServer(server.id, now);
      if (!this.reachable) logger.info({}, 'database reachable again');
      this.reachable = true;
      if (this.options.sweepStale && now.getTime() - this.lastSweep >= staleServerMs / 2) {
        this.lastSweep = now.getTime();
        const closed = await store.closeOutStaleServers(new Date(now.getTime() - staleServerMs), now);
        if (closed.servers > 0) logger.warn(closed, 'closed out servers that stopped answering');
      }
    } catch (err) {
      if (this.reachable) logger.warn({ err: (err as Error).message }, 'database unreachable; the heartbeat is not recorded');
      this.reachable = false;
    }
  }

  /** Stops the heartbeat and marks the row stopped; a failure is logged, not thrown. */
  async markStopped(): Promise<void> {
    this.stopHeartbeat();
    try {
      await this.options.store.stopServer(this.options.server.id, new Date());
    } catch (err) {
      this.options.logger.error({ err: (err as Error).message }, 'could not mark the server stopped');
    }
  }
}
