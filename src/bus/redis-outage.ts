import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { TimeoutError, withTimeout } from '../timeout.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';

/** Lifecycle of a RedisBus: `ready` = both connections up and this node's state restored. */
export type BusState = 'idle' | 'connecting' | 'ready' | 'closed';

type Role = 'publisher' | 'subscriber';

/** The parts of the bus an outage touches. */
export interface OutageHooks {
  /** After (re)connecting, before held messages go out: subscriptions, own state, the others'. Stops early once `current()` is false. */
  restore(current: () => boolean): Promise<void>;
  /** Publishes encoded bytes on a pub/sub channel. */
  send(target: string, bytes: Buffer): void;
  /** The other nodes known. */
  peers(): string[];
  /** The subscriber connection dropped. */
  subscriberLost(): void;
  /** The bus stopped being ready (or a restore failed). */
  notReady(): void;
  /** The bus turned ready. */
  ready(): void;
}

export interface OutageOptions {
  nodeId: string;
  maxPending: number;
  maxPendingAgeMs: number;
  nodeTtlMs: number;
}

/** Counters an outage moves (a part of RedisBusStats). */
export interface OutageStats {
  held: number;
  refused: number;
  dropped: number;
}

interface Held {
  target: string;
  bytes: Buffer;
  at: number;
}

/**
 * Redis lost and back. Either connection lost: not ready (`/readyz` 503). Publishes are
 * then held in memory, in order, at most `maxPending` of them, each at most
 * `maxPendingAgeMs` (older ones are dropped, and logged). `hold` refuses once the queue is
 * full or the outage has lasted longer than `maxPendingAgeMs`. ioredis reconnects
 * (backoff up to 1 s); then the restore runs, waits (at most `nodeTtlMs`, and only when it
 * holds messages) until the nodes it knew have rewritten their hashes — they are
 * subscribed again then, which matters after a Redis restart — sends the held messages
 * in order and turns ready. Messages in flight when the connection dropped are not
 * resent (at most once); messages published elsewhere during the outage are not received.
 */
export class Outage {
  private current: BusState = 'idle';
  private pubUp = false;
  private subUp = false;
  /** Identity of the restore in progress; null when none runs. */
  private restoreToken: object | null = null;
  /** When the bus last stopped being ready (or started). */
  private lostAt = Date.now();
  private refusing = false;
  private connErrorLogged = false;
  private held: Held[] = [];
  private expiredSinceLost = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly readyWaiters = new Set<() => void>();

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly options: OutageOptions,
    private readonly logger: Logger,
    private readonly stats: OutageStats,
    private readonly hooks: OutageHooks
  ) {
    this.watch(link.pub, 'publisher');
    this.watch(link.sub, 'subscriber');
  }

  get state(): BusState {
    return this.current;
  }

  /** Connects; resolves once ready or after `connectTimeoutMs` (not ready, retrying: logged). */
  async start(connectTimeoutMs: number): Promise<void> {
    this.current = 'connecting';
    this.lostAt = Date.now();
    this.link.connect();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.readyWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, connectTimeoutMs);
      this.readyWaiters.add(done);
    });
    if (this.current === 'connecting') {
      this.logger.warn({ nodeId: this.options.nodeId }, 'Redis bus unreachable at start; running not ready and retrying');
    }
  }

  /** Closed from now on; returns whether it was ready. Held messages stay until `dropHeld`. */
  close(): boolean {
    const wasReady = this.current === 'ready';
    this.current = 'closed';
    this.restoreToken = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of [...this.readyWaiters]) w();
    return wasReady;
  }

  /** Drops the held messages (at close), logged. */
  dropHeld(): void {
    if (this.held.length === 0) return;
    this.stats.dropped += this.held.length;
    this.logger.warn({ dropped: this.held.length }, 'Redis bus closed with held messages; dropped');
    this.held = [];
  }

  /** Holds a message while not ready; false = refused (queue full or outage too long). */
  hold(target: string, bytes: Buffer): boolean {
    const now = Date.now();
    this.expireHeld(now);
    if (this.held.length >= this.options.maxPending || now - this.lostAt > this.options.maxPendingAgeMs) {
      this.stats.refused++;
      if (!this.refusing) {
        this.refusing = true;
        this.logger.error({ held: this.held.length, outageMs: now - this.lostAt }, 'Redis bus unavailable too long or queue full; refusing publishes');
      }
      return false;
    }
    this.held.push({ target, bytes, at: now });
    this.stats.held++;
    return true;
  }

  /** Drops held messages older than maxPendingAgeMs (they are oldest first). */
  expireHeld(now: number): void {
    const limit = now - this.options.maxPendingAgeMs;
    let n = 0;
    while (n < this.held.length && this.held[n]!.at < limit) n++;
    if (n === 0) return;
    this.held.splice(0, n);
    this.stats.dropped += n;
    if (this.expiredSinceLost === 0) this.logger.warn({ maxPendingAgeMs: this.options.maxPendingAgeMs }, 'Redis bus: dropping held messages older than the limit');
    this.expiredSinceLost += n;
  }

  /**
   * `p`, or — when the `role` connection does not answer within `ms` — a `TimeoutError`
   * and a reconnection: a network that drops packets may take long to close the socket.
   */
  async answered<T>(role: Role, p: Promise<T>, ms: number): Promise<T> {
    try {
      return await withTimeout(p, ms, `Redis ${role} answer`);
    } catch (err) {
      if (this.current === 'ready' && err instanceof TimeoutError) {
        this.logger.warn({ role, ms }, 'Redis bus: no answer from Redis; reconnecting');
        this.down(role);
        this.lost(role);
        (role === 'publisher' ? this.link.pub : this.link.sub).disconnect(true);
      }
      throw err;
    }
  }

  private watch(conn: Redis, role: Role): void {
    conn.on('ready', () => {
      if (role === 'publisher') this.pubUp = true;
      else this.subUp = true;
      this.maybeRestore();
    });
    conn.on('close', () => {
      this.down(role);
      this.lost(role);
    });
    conn.on('error', (err: Error) => {
      if (this.current === 'closed' || this.connErrorLogged) return;
      this.connErrorLogged = true;
      this.logger.warn({ role, err: err.message }, 'Redis bus connection error; retrying');
    });
  }

  private down(role: Role): void {
    if (role === 'publisher') this.pubUp = false;
    else {
      this.subUp = false;
      this.hooks.subscriberLost();
    }
  }

  private lost(role: Role): void {
    if (this.current === 'closed') return;
    this.restoreToken = null;
    this.link.rejectInflight(new Error(`Redis ${role} connection lost`));
    if (this.current === 'ready') {
      this.current = 'connecting';
      this.lostAt = Date.now();
      this.refusing = false;
      this.expiredSinceLost = 0;
      this.logger.warn(
        { role, maxPending: this.options.maxPending, maxPendingAgeMs: this.options.maxPendingAgeMs },
        'Redis bus lost; not ready, holding publishes'
      );
    }
    this.hooks.notReady();
  }

  private maybeRestore(): void {
    if (this.current !== 'connecting' || this.restoreToken !== null || !this.pubUp || !this.subUp) return;
    const token = {};
    this.restoreToken = token;
    this.restore(token).then(
      () => {
        if (this.restoreToken === token) this.restoreToken = null;
      },
      (err: unknown) => {
        if (this.restoreToken !== token) return; // superseded: the connection went again
        this.restoreToken = null;
        this.logger.warn({ err: (err as Error).message }, 'Redis bus restore failed; retrying');
        this.retryTimer = setTimeout(() => this.maybeRestore(), 500);
        this.retryTimer.unref();
      }
    );
  }

  /** After (re)connecting: the bus's own restore, then the held messages, then ready. */
  private async restore(token: object): Promise<void> {
    const current = (): boolean => this.restoreToken === token;
    await this.hooks.restore(current);
    if (!current()) return;
    if (this.held.length > 0) await this.awaitPeers(token, Date.now() + this.options.nodeTtlMs);
    if (!current()) return;
    // Synchronously from here: held messages go out before any new one.
    const now = Date.now();
    this.expireHeld(now);
    const sent = this.held.length;
    for (const h of this.held) this.hooks.send(h.target, h.bytes);
    this.held = [];
    const outage = now - this.lostAt;
    this.current = 'ready';
    this.restoreToken = null;
    this.connErrorLogged = false;
    this.logger.info(
      { nodeId: this.options.nodeId, heldSent: sent, heldDropped: this.expiredSinceLost, outageMs: outage, nodes: this.hooks.peers().length },
      'Redis bus ready'
    );
    for (const w of [...this.readyWaiters]) w();
    this.hooks.ready();
  }

  /**
   * Held messages are meant for the nodes that were there before the outage. After a
   * Redis restart those subscribe again at their own pace: wait (until `deadline`) for
   * each one's hash to be back, which it writes once re-subscribed, so the held messages
   * are not published to nobody.
   */
  private async awaitPeers(token: object, deadline: number): Promise<void> {
    let ids = this.hooks.peers();
    while (ids.length > 0 && this.restoreToken === token) {
      const p = this.link.pub.pipeline();
      for (const id of ids) p.exists(this.keys.node(id));
      const res = await this.link.exec(p);
      ids = ids.filter((_, i) => res[i] === 0);
      if (ids.length === 0 || Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
