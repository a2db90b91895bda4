import type { Logger } from 'pino';
import { LogThrottle, maskUrl } from '../log.js';
import type { Bus, BusMessage } from './bus.js';
import type { OlderEvents } from './channel-log.js';
import { ALL_CHANNEL, type MemberInfo, type Position } from '../protocol/frames.js';
import { withTimeout } from '../timeout.js';
import { decodeChannelMessage, decodeControl, encodeChannelMessage } from './redis-codec.js';
import { RedisKeys } from './redis-keys.js';
import { RedisLink } from './redis-link.js';
import { RedisLog } from './redis-log.js';
import { NodesCache } from './redis-nodes-cache.js';
import { Outage, type BusState } from './redis-outage.js';
import { OwnState } from './redis-own-state.js';
import { Resync } from './redis-resync.js';

/**
 * The bus of the nodes sharing one Redis (`--bus redis://HOST:PORT/DB`) and key prefix
 * (`--bus-prefix`). It depends on nothing but Redis and its options, so a node
 * (`zenconn serve`) or an agent bridging its workers can both use it. This class wires
 * its parts, one file each:
 * - redis-keys.ts: the Redis layout;
 * - redis-codec.ts: the MessagePack records on the pub/sub channels;
 * - redis-own-state.ts: this node's subscriptions and hash;
 * - redis-nodes-cache.ts: the other nodes' hashes as last seen (what `remoteCount` reads);
 * - redis-outage.ts: Redis lost and back, with the held publishes;
 * - redis-resync.ts: the other nodes' liveness (resync, dead nodes);
 * - redis-link.ts: the two connections.
 *
 * A node drops its own messages (Redis sends them back to it when it has members of the
 * channel). Routing does not depend on counts: a node receives a channel's traffic by its
 * own subscription, and `whenSubscribed` tells the hub when that subscription is
 * acknowledged and the new count announced (so `subscribed` is answered only then, and
 * the other nodes count the member by the time its client can say anything). Every
 * `resyncMs` each node compares the `seq` of every node in Redis with its cache and
 * re-reads what it missed. A dead node is counted until its hash expires and the next
 * resync notices, at most
 * `nodeTtlMs + resyncMs` (7 s by default) after its last heartbeat; then its members of
 * private channels are announced as `left` to the local members of those channels, as if
 * they had disconnected. For `nodeTtlMs` after this node (re)connects it declares nobody
 * dead, so that after a Redis restart the others have time to rewrite their hashes.
 *
 * At start the node does not wait for Redis forever: `start` resolves once ready or
 * after `connectTimeoutMs`, leaving the node not ready and retrying (Redis may come up
 * after zenconn; `/readyz` says when it did).
 */
export interface RedisBusOptions {
  /** `redis://[[user]:password@]HOST:PORT/DB` or `rediss://…` (TLS). */
  url: string;
  /** Prefix of every key and pub/sub channel. Default `zenconn:`. */
  prefix?: string;
  /** This process's id on the bus (a node's server id): unique, never reused. */
  nodeId: string;
  logger: Logger;
  /** Events kept per channel in Redis (`--history-size`). Default 1000. */
  historySize?: number;
  /** How long they are kept, ms (`--history-ttl-ms`). Default 300000. */
  historyTtlMs?: number;
  /** Events older than the Redis window, from the audit trail the nodes share (see channel-log.ts `readWithOlder`). */
  olderEvents?: OlderEvents | null;
  /** Publishes held while Redis is lost; beyond it publish refuses. Default 10000. */
  maxPending?: number;
  /** Longest a publish is held while Redis is lost; also how long an outage may last before publish refuses. Default 5000. */
  maxPendingAgeMs?: number;
  /** How often this node refreshes the TTL of its hash. Default 1000. */
  heartbeatMs?: number;
  /** TTL of this node's hash: silent this long, a node is dead to the others. Default 5000. */
  nodeTtlMs?: number;
  /** How often the other nodes' versions are compared with the cache. Default 2000. */
  resyncMs?: number;
  /** How long `start` waits for Redis before resolving not ready. Default 3000. */
  connectTimeoutMs?: number;
}

/** Counters of a RedisBus since it started (for tests and metrics). */
export interface RedisBusStats {
  /** Messages sent to Redis (held ones included once sent). */
  published: number;
  /** Messages from other nodes handed to the handlers. */
  received: number;
  /** Messages that were held during an outage. */
  held: number;
  /** Publishes refused (queue full or outage too long). */
  refused: number;
  /** Held messages dropped for age, at close, or lost in a failed send. */
  dropped: number;
  /** Messages that arrived for a channel without local members (a late unsubscribe). */
  stray: number;
  /** Messages from Redis that could not be decoded (dropped, logged at most every 10 s). */
  malformed: number;
  /** Decoded messages a handler could not deliver (it threw; dropped, logged at most every 10 s). */
  undeliverable: number;
}

/** How long a clean stop may take to remove this node from Redis before leaving it to expire. */
const REMOVE_TIMEOUT_MS = 1000;

/** The Redis implementation of the Bus contract (see bus.ts and the comment above). */
export class RedisBus implements Bus {
  readonly nodeId: string;
  readonly stats: RedisBusStats = { published: 0, received: 0, held: 0, refused: 0, dropped: 0, stray: 0, malformed: 0, undeliverable: 0 };
  private readonly malformedLog = new LogThrottle();
  private readonly undeliverableLog = new LogThrottle();
  private readonly logger: Logger;
  private readonly heartbeatMs: number;
  private readonly nodeTtlMs: number;
  private readonly resyncMs: number;
  private readonly connectTimeoutMs: number;
  private readonly keys: RedisKeys;
  private readonly link: RedisLink;
  private readonly own: OwnState;
  private readonly others: NodesCache;
  private readonly outage: Outage;
  /** Redis as the sequencer and hot history of events (redis-log.ts). */
  readonly log: RedisLog;
  /**
   * Records of events (not `*`): sent through the sequencing script, not PUBLISH; the
   * value is told the position Redis gave (null: lost), when the publisher asked.
   */
  private readonly sequencedRecords = new WeakMap<Buffer, ((position: Position | null) => void) | null>();

  /** The other nodes' liveness: resync and dead nodes (redis-resync.ts). */
  private readonly resync: Resync;
  private readonly handlers = new Set<(message: BusMessage) => void>();
  private readonly countWatchers = new Set<(channel: string, count: number) => void>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private heartbeatBusy = false;

  constructor(options: RedisBusOptions) {
    this.nodeId = options.nodeId;
    this.logger = options.logger.child({ component: 'redis-bus' });
    const maxPending = options.maxPending ?? 10000;
    const maxPendingAgeMs = options.maxPendingAgeMs ?? 5000;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.nodeTtlMs = options.nodeTtlMs ?? 5000;
    this.resyncMs = options.resyncMs ?? 2000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    if (!/^rediss?:\/\//.test(options.url)) throw new TypeError(`RedisBus: expected redis://HOST:PORT/DB, got "${maskUrl(options.url)}"`);
    if (!this.nodeId || /\s/.test(this.nodeId)) throw new TypeError('RedisBus: nodeId must be a non-empty id without spaces');
    if (!(maxPending >= 1) || !(maxPendingAgeMs >= 0)) throw new RangeError('RedisBus: maxPending must be ≥ 1 and maxPendingAgeMs ≥ 0');
    if (!(this.heartbeatMs > 0) || !(this.nodeTtlMs > this.heartbeatMs) || !(this.resyncMs > 0)) {
      throw new RangeError('RedisBus: heartbeatMs and resyncMs must be > 0 and nodeTtlMs > heartbeatMs');
    }
    this.keys = new RedisKeys(options.prefix ?? 'zenconn:');
    this.link = new RedisLink(options.url, this.nodeId);
    this.log = new RedisLog(this.link.pub, this.keys.prefix, options.historySize ?? 1000, options.historyTtlMs ?? 300000, options.olderEvents ?? null);
    const state = (): BusState => this.outage.state;
    this.own = new OwnState(this.link, this.keys, this.nodeId, this.nodeTtlMs, this.logger, state);
    this.others = new NodesCache(
      (id) => this.link.guard(this.link.pub.hgetall(this.keys.node(id))),
      (channel, total) => this.countChanged(channel, total)
    );
    this.outage = new Outage(this.link, this.keys, { nodeId: this.nodeId, maxPending, maxPendingAgeMs, nodeTtlMs: this.nodeTtlMs }, this.logger, this.stats, {
      restore: (current) => this.restore(current),
      send: (target, bytes) => this.send(target, bytes),
      peers: () => this.others.ids(),
      subscriberLost: () => this.own.subscriptionsLost(),
      // Not ready: nobody waits for a subscription any more (the restore subscribes all).
      notReady: () => this.own.settleSubWaiters(),
      ready: () => {
        if (this.own.changed) this.own.scheduleFlush();
      }
    });
    this.resync = new Resync({
      link: this.link,
      keys: this.keys,
      nodeId: this.nodeId,
      nodeTtlMs: this.nodeTtlMs,
      others: this.others,
      own: this.own,
      logger: this.logger,
      ready: () => this.outage.state === 'ready',
      deliver: (m) => this.deliver(m)
    });
    this.link.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.onRedisMessage(channel, payload));
  }

  /** Whether both connections are up and this node's state is restored in Redis. */
  get ready(): boolean {
    return this.outage.state === 'ready';
  }

  /**
   * Connects. Resolves once ready, or after `connectTimeoutMs` with the bus not ready
   * and retrying in the background (logged). Never rejects for an unreachable Redis.
   */
  async start(): Promise<void> {
    if (this.outage.state !== 'idle') return;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
    this.heartbeatTimer.unref();
    this.resyncTimer = setInterval(() => void this.resync.periodic(), this.resyncMs);
    this.resyncTimer.unref();
    await this.outage.start(this.connectTimeoutMs);
  }

  publish(message: BusMessage, sequenced?: (position: Position | null) => void): boolean {
    if (this.outage.state === 'closed') return false;
    const f = message.frame;
    if (f.type === 'joined' || f.type === 'left') this.own.trackMember(f.type, f.channel, f.data);
    const bytes = encodeChannelMessage(this.nodeId, message);
    const target = this.keys.channel(message.channel);
    if (f.type === 'event' && message.channel !== ALL_CHANNEL) this.sequencedRecords.set(bytes, sequenced ?? null);
    if (this.outage.state === 'ready') {
      this.send(target, bytes);
      return true;
    }
    return this.outage.hold(target, bytes);
  }

  remoteCount(channel: string): number {
    return this.others.count(channel);
  }

  /** A public channel's member, written to this node's hash as a private one's is (presence). */
  trackMember(type: 'joined' | 'left', channel: string, member: MemberInfo): void {
    if (this.outage.state === 'closed') return;
    this.own.trackMember(type, channel, member);
  }

  setLocalCount(channel: string, count: number): void {
    this.own.setCount(channel, count);
  }

  /**
   * Waits for the channel's SUBSCRIBE to be acknowledged and its count announced to the
   * other nodes (the next state write), for every member, not only a channel's first. Not ready: null — the restore subscribes
   * everything, and nothing is delivered until then anyway.
   */
  whenSubscribed(channel: string): Promise<void> | null {
    return this.own.whenSubscribed(channel);
  }

  onMessage(handler: (message: BusMessage) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /**
   * Registers a handler told each time `remoteCount(channel)` changes, with the new
   * value (for a process that relays counts further, e.g. an agent to its workers);
   * returns its remover. Called synchronously, possibly many times per turn.
   */
  onRemoteCountChange(handler: (channel: string, count: number) => void): () => void {
    this.countWatchers.add(handler);
    return () => this.countWatchers.delete(handler);
  }

  /**
   * Appends the members of `channel` on the other nodes, as their hashes last said, to
   * `out` until it holds `limit`; true when some were left out (presence). A dead node's
   * members go with it, when the resync declares it dead.
   */
  appendMembers(channel: string, limit: number, out: MemberInfo[]): boolean {
    return this.others.appendMembers(channel, limit, out);
  }

  /** The other nodes this one knows of (for tests and diagnostics). */
  knownNodes(): string[] {
    return this.others.ids();
  }

  /**
   * Leaves cleanly: removes this node's hash, tells the others, closes both
   * connections. Held messages are dropped (and logged).
   */
  async close(): Promise<void> {
    if (this.outage.state === 'closed') return;
    const wasReady = this.outage.close();
    for (const t of [this.heartbeatTimer, this.resyncTimer]) if (t) clearInterval(t);
    this.others.close();
    this.own.settleSubWaiters();
    if (wasReady) {
      try {
        await withTimeout(this.own.remove(), REMOVE_TIMEOUT_MS, 'removing this node');
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'Redis bus: could not remove this node cleanly; it expires');
      }
    }
    this.outage.dropHeld();
    this.link.rejectInflight(new Error('Redis bus closed'));
    this.handlers.clear();
    this.countWatchers.clear();
    this.link.disconnect();
  }

  /** The bus's part of a restore (redis-outage.ts runs it): subscriptions, own hash, the others'. */
  private async restore(current: () => boolean): Promise<void> {
    await this.own.resubscribe();
    if (!current()) return;
    await this.own.writeFull();
    if (!current()) return;
    await this.resync.restored();
  }

  /**
   * Every `heartbeatMs`: refreshes this node's TTL and checks that both connections
   * answer. One that has not answered within `nodeTtlMs - heartbeatMs` (a network that
   * drops packets, a stalled Redis) is dropped and reconnected, so the outage is seen
   * and publishes stop piling up in a socket that goes nowhere.
   */
  private async heartbeat(): Promise<void> {
    if (this.outage.state !== 'ready') {
      this.outage.expireHeld(Date.now());
      return;
    }
    if (this.heartbeatBusy) return;
    this.heartbeatBusy = true;
    const limitMs = this.nodeTtlMs - this.heartbeatMs;
    try {
      const [expired] = await Promise.all([
        this.outage.answered('publisher', this.own.refreshTtl(), limitMs),
        this.outage.answered('subscriber', this.link.guard(this.link.sub.ping()), limitMs)
      ]);
      if (expired) {
        this.logger.warn('Redis bus: this node\'s key had expired (a pause or a Redis restart); rewriting it');
        await this.own.writeFull();
      }
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'Redis bus: heartbeat failed');
    } finally {
      this.heartbeatBusy = false;
    }
  }

  // ---- data plane ------------------------------------------------------------------

  private send(target: string, bytes: Buffer): void {
    this.stats.published++;
    const told = this.sequencedRecords.get(bytes);
    const channel = told !== undefined ? this.keys.channelOf(target) : null;
    const sent: Promise<unknown> = channel !== null ? this.log.sequence(channel, bytes, target) : this.link.pub.publish(target, bytes);
    sent.then(
      (r) => {
        if (told) told(r as Position);
      },
      (err: Error) => {
        // Lost with the connection (or refused by Redis): at most once, never resent.
        this.stats.dropped++;
        this.logger.debug({ err: err.message }, 'Redis bus: a publish failed');
        if (told) told(null);
      }
    );
  }

  private onRedisMessage(channel: Buffer, payload: Buffer): void {
    if (this.outage.state === 'closed') return;
    if (channel.length === this.keys.ctl.length && channel.toString() === this.keys.ctl) {
      this.onControl(payload);
      return;
    }
    const r = decodeChannelMessage(payload, this.nodeId);
    if (r === 'own') return;
    if (r === 'malformed') {
      this.malformed(payload);
      return;
    }
    const f = r.frame;
    if (f.channel !== ALL_CHANNEL && !this.own.has(f.channel)) {
      this.stats.stray++;
      return;
    }
    this.stats.received++;
    this.deliver({ channel: f.channel, frame: f, exclude: r.exclude });
  }

  private onControl(payload: Buffer): void {
    const r = decodeControl(payload, this.nodeId);
    if (r === 'malformed') this.malformed(payload);
    else if (r === null || r === 'own') return;
    else if (r.kind === 'b') this.resync.dropNode(r.node, false);
    else if (r.kind === 's') this.others.rewritten(r.node, r.seq);
    else this.others.delta(r.node, r.seq, r.fields);
  }

  private deliver(message: BusMessage): void {
    for (const h of this.handlers) {
      try {
        h(message);
      } catch (err) {
        // Dropped and counted: a message one node cannot deliver never takes the process down.
        this.stats.undeliverable++;
        this.undeliverableLog.run((suppressed) =>
          this.logger.error({ err, undeliverable: this.stats.undeliverable, suppressed }, 'Redis bus: a message handler threw; message dropped')
        );
      }
    }
  }

  private countChanged(channel: string, total: number): void {
    for (const w of this.countWatchers) {
      try {
        w(channel, total);
      } catch (err) {
        this.logger.error({ err }, 'Redis bus: a count handler threw');
      }
    }
  }

  private malformed(payload: Buffer): void {
    this.stats.malformed++;
    this.malformedLog.run((suppressed) =>
      this.logger.warn({ bytes: payload.length, malformed: this.stats.malformed, suppressed }, 'Redis bus: undecodable message ignored (is another program publishing under this prefix?)')
    );
  }
}
