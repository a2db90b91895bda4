import { Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus, BusMessage } from './bus.js';
import { ALL_CHANNEL, MAX_DATA_DEPTH, type MemberInfo, type ServerFrame } from '../protocol/frames.js';
import { packValue } from '../protocol/msgpack-encoder.js';
import { unpackValue } from '../protocol/msgpack-reader.js';

/**
 * The bus of the nodes sharing one Redis (`--bus redis://HOST:PORT/DB`) and key prefix
 * (`--bus-prefix`). It depends on nothing but Redis and its options, so a node
 * (`zenconn serve`) or an agent bridging its workers can both use it.
 *
 * ## Redis layout (P = the prefix, default `zenconn:`)
 * - `P ch:<channel>`: pub/sub channel of a zenconn channel. A node SUBSCRIBEs to it while
 *   it has members of the channel (setLocalCount > 0) and UNSUBSCRIBEs at 0, so it only
 *   receives the traffic of channels in use on it.
 * - `P all`: pub/sub channel of broadcasts to `*`; every node subscribes, so each
 *   reaches every node once.
 * - `P ctl`: pub/sub control channel: count and membership changes, state rewrites, and
 *   goodbyes (below). Every node subscribes.
 * - `P node:<node id>`: a hash holding this node's state, with a TTL (`nodeTtlMs`)
 *   refreshed every `heartbeatMs`: `seq` (its version), `c:<channel>` → member count,
 *   `m:<private channel> <session id>` → the member's user as JSON (`null` or a
 *   string). A node that dies stops refreshing it and its counts and members expire
 *   together with it.
 * - `P nodes`: a set of node ids, to find the hashes; entries whose hash expired are
 *   removed by whichever node notices first.
 *
 * ## Messages
 * Channel messages are encoded once, as plain MessagePack (msgpackr through the binary
 * codec's encoder): `[origin node id, exclude session id or nil, frame]`, the frame
 * being the ServerFrame without its JSON-codec hint. They are decoded with the binary
 * codec's strict reader, not msgpackr's unpacker, which would rename a `__proto__` key in
 * the data (and honour msgpackr extensions); the reader gives back Dates, binary data,
 * NaN and `__proto__` keys as a local sender would have passed them. A node drops its own
 * messages (Redis sends them back to it when it has members of the channel). Redis is
 * trusted: anything that can publish on it can make every node deliver events.
 *
 * Control messages: `['d', node, seq, field, value|nil, …]` (a delta of the node's hash,
 * nil = deleted field), `['s', node, seq]` (the node rewrote its whole hash: re-read it),
 * `['b', node]` (it stopped cleanly).
 *
 * ## Counts and membership (consistency)
 * `remoteCount` must answer synchronously, so each node caches the other nodes' hashes:
 * deltas arrive on `ctl` (changes are batched per event-loop turn; a node announces a
 * new channel's count only once its SUBSCRIBE is acknowledged, so a node counted by the
 * others already receives the channel's traffic); a gap in a node's `seq`, an unknown
 * node or a rewrite triggers a re-read of its hash, and deltas that arrive while the
 * re-read is in flight are re-applied on top of it, so the cache converges exactly. Every
 * `resyncMs` each node compares the `seq` of every node in Redis with its cache and
 * re-reads what it missed. Counts are therefore eventually consistent: a change is seen
 * elsewhere after about one Redis round trip; a lost notice is corrected within
 * `resyncMs`; a dead node is counted until its hash expires and the next resync notices,
 * at most `nodeTtlMs + resyncMs` (7 s by default) after its last heartbeat. Then its
 * members of private channels are announced as `left` to the local members of those
 * channels, as if they had disconnected. For `nodeTtlMs` after this node (re)connects it
 * declares nobody dead, so that after a Redis restart the others have time to rewrite
 * their hashes. Routing does not depend on counts: a node receives a channel's traffic
 * by its own subscription, and `whenSubscribed` tells the hub when that subscription is
 * acknowledged (so `subscribed` is answered only then).
 *
 * ## Redis lost
 * Either connection lost: `ready` turns false (`/readyz` 503). Publishes are then held
 * in memory, in order, at most `maxPending` of them, each at most `maxPendingAgeMs`
 * (older ones are dropped, and logged). `publish` refuses (returns false; the sender
 * gets `bus unavailable`) once the queue is full or the outage has lasted longer than
 * `maxPendingAgeMs`. ioredis reconnects (backoff up to 1 s); then the node subscribes
 * again to everything, rewrites its hash, re-reads the others', waits (at most
 * `nodeTtlMs`, and only when it holds messages) until the nodes it knew have rewritten
 * theirs — they are subscribed again then, which matters after a Redis restart — sends
 * the held messages in order and turns ready. Messages in flight when the connection dropped are not
 * resent (delivery stays at most once); messages published elsewhere during the outage
 * are not received.
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
  /** Messages from Redis that could not be decoded. */
  malformed: number;
}

/** A cached view of another node's hash. */
interface RemoteNode {
  seq: number;
  counts: Map<string, number>;
  /** private channel → session → user */
  members: Map<string, Map<string, string | null>>;
  /** Deltas received while its hash is being re-read; null when no re-read is in flight. */
  pending: Array<{ seq: number; fields: unknown[] }> | null;
  /** Read the hash again once the re-read in flight is done (it may predate a rewrite). */
  refetch: boolean;
}

interface Held {
  target: string;
  bytes: Buffer;
  at: number;
}

const SUBSCRIBE_CHUNK = 1000;

/** The Redis implementation of the Bus contract (see bus.ts and the comment above). */
export class RedisBus implements Bus {
  readonly nodeId: string;
  readonly stats: RedisBusStats = { published: 0, received: 0, held: 0, refused: 0, dropped: 0, stray: 0, malformed: 0 };
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly maxPending: number;
  private readonly maxPendingAgeMs: number;
  private readonly heartbeatMs: number;
  private readonly nodeTtlMs: number;
  private readonly resyncMs: number;
  private readonly connectTimeoutMs: number;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly ctlKey: string;
  private readonly allKey: string;
  private readonly nodesKey: string;
  private readonly ownKey: string;

  private state: 'idle' | 'connecting' | 'ready' | 'closed' = 'idle';
  private pubUp = false;
  private subUp = false;
  /** Identity of the restore in progress; null when none runs. */
  private restoreToken: object | null = null;
  /** Rejecters of the Redis calls awaited now: a lost connection rejects them all. */
  private readonly inflight = new Set<(err: Error) => void>();
  /** When the bus last stopped being ready (or started). */
  private lostAt = Date.now();
  private refusing = false;
  private connErrorLogged = false;
  private graceUntil = 0;
  private held: Held[] = [];
  private expiredSinceLost = 0;

  /** This node's state: channel → local members (> 0). */
  private readonly localCounts = new Map<string, number>();
  /** private channel → session → user, from the joined/left notices this node publishes. */
  private readonly localMembers = new Map<string, Map<string, string | null>>();
  /** Hash fields changed since the last write: field → value (null = delete). */
  private readonly dirty = new Map<string, string | null>();
  /** Channels whose interest (count > 0) may have changed since the last flush. */
  private readonly interestDirty = new Set<string>();
  /** Pub/sub channels requested on the current subscriber connection. */
  private readonly subscribed = new Set<string>();
  /** Of those, the ones whose SUBSCRIBE Redis has not acknowledged yet. */
  private readonly unacked = new Set<string>();
  /** zenconn channel → resolvers of `whenSubscribed`, settled after each state write. */
  private readonly subWaiters = new Map<string, Array<() => void>>();
  private seq = 0;
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();

  private readonly remote = new Map<string, RemoteNode>();
  /** channel → members on all other nodes */
  private readonly totals = new Map<string, number>();
  private readonly handlers = new Set<(message: BusMessage) => void>();
  private readonly countWatchers = new Set<(channel: string, count: number) => void>();
  private readonly readyWaiters = new Set<() => void>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeatBusy = false;
  private resyncBusy = false;

  constructor(options: RedisBusOptions) {
    this.nodeId = options.nodeId;
    this.prefix = options.prefix ?? 'zenconn:';
    this.logger = options.logger.child({ component: 'redis-bus' });
    this.maxPending = options.maxPending ?? 10000;
    this.maxPendingAgeMs = options.maxPendingAgeMs ?? 5000;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.nodeTtlMs = options.nodeTtlMs ?? 5000;
    this.resyncMs = options.resyncMs ?? 2000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    if (!/^rediss?:\/\//.test(options.url)) throw new TypeError(`RedisBus: expected redis://HOST:PORT/DB, got "${options.url}"`);
    if (!this.nodeId || /\s/.test(this.nodeId)) throw new TypeError('RedisBus: nodeId must be a non-empty id without spaces');
    if (!(this.maxPending >= 1) || !(this.maxPendingAgeMs >= 0)) throw new RangeError('RedisBus: maxPending must be ≥ 1 and maxPendingAgeMs ≥ 0');
    if (!(this.heartbeatMs > 0) || !(this.nodeTtlMs > this.heartbeatMs) || !(this.resyncMs > 0)) {
      throw new RangeError('RedisBus: heartbeatMs and resyncMs must be > 0 and nodeTtlMs > heartbeatMs');
    }
    this.ctlKey = `${this.prefix}ctl`;
    this.allKey = `${this.prefix}all`;
    this.nodesKey = `${this.prefix}nodes`;
    this.ownKey = this.nodeKey(this.nodeId);

    const common: RedisOptions = {
      lazyConnect: true,
      // The bus holds messages itself (bounded) and never resends one whose fate is
      // unknown: at most once, in order.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
      connectTimeout: 3000
    };
    this.pub = new Redis(options.url, { ...common, connectionName: `zenconn-pub-${this.nodeId}` });
    this.sub = new Redis(options.url, { ...common, connectionName: `zenconn-sub-${this.nodeId}`, autoResubscribe: false });
    this.watch(this.pub, 'publisher');
    this.watch(this.sub, 'subscriber');
    this.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.onRedisMessage(channel, payload));
  }

  /** Whether both connections are up and this node's state is restored in Redis. */
  get ready(): boolean {
    return this.state === 'ready';
  }

  /**
   * Connects. Resolves once ready, or after `connectTimeoutMs` with the bus not ready
   * and retrying in the background (logged). Never rejects for an unreachable Redis.
   */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'connecting';
    this.lostAt = Date.now();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
    this.heartbeatTimer.unref();
    this.resyncTimer = setInterval(() => void this.periodicResync(), this.resyncMs);
    this.resyncTimer.unref();
    this.pub.connect().catch(() => undefined);
    this.sub.connect().catch(() => undefined);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.readyWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.connectTimeoutMs);
      this.readyWaiters.add(done);
    });
    if (this.state === 'connecting') {
      this.logger.warn({ nodeId: this.nodeId }, 'Redis bus unreachable at start; running not ready and retrying');
    }
  }

  publish(message: BusMessage): boolean {
    if (this.state === 'closed') return false;
    const f = message.frame;
    if (f.type === 'joined' || f.type === 'left') this.trackMember(f.type, f.channel, f.data);
    const bytes = this.encode(message);
    const target = this.channelKey(message.channel);
    if (this.state === 'ready') {
      this.send(target, bytes);
      return true;
    }
    return this.hold(target, bytes);
  }

  remoteCount(channel: string): number {
    return this.totals.get(channel) ?? 0;
  }

  setLocalCount(channel: string, count: number): void {
    if (this.state === 'closed') return;
    const had = this.localCounts.has(channel);
    if (count > 0) this.localCounts.set(channel, count);
    else this.localCounts.delete(channel);
    this.dirty.set(`c:${channel}`, count > 0 ? String(count) : null);
    if (channel !== ALL_CHANNEL && had !== count > 0) this.interestDirty.add(channel);
    this.scheduleFlush();
  }

  /**
   * Waits for the channel's SUBSCRIBE to be acknowledged and its count announced to the
   * other nodes (the next state write). Not ready: null — the restore subscribes
   * everything, and nothing is delivered until then anyway.
   */
  whenSubscribed(channel: string): Promise<void> | null {
    if (this.state !== 'ready' || channel === ALL_CHANNEL || !this.localCounts.has(channel)) return null;
    const key = this.channelKey(channel);
    if (this.subscribed.has(key) && !this.unacked.has(key)) return null;
    return new Promise((resolve) => {
      const list = this.subWaiters.get(channel);
      if (list === undefined) this.subWaiters.set(channel, [resolve]);
      else list.push(resolve);
    });
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

  /** The other nodes this one knows of (for tests and diagnostics). */
  knownNodes(): string[] {
    return [...this.remote.keys()];
  }

  /**
   * Leaves cleanly: removes this node's hash, tells the others, closes both
   * connections. Held messages are dropped (and logged).
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    this.restoreToken = null;
    for (const t of [this.heartbeatTimer, this.resyncTimer, this.retryTimer]) if (t) clearInterval(t);
    for (const w of [...this.readyWaiters]) w();
    this.settleSubWaiters();
    if (wasReady) {
      try {
        await this.withTimeout(this.exec(this.pub.multi().del(this.ownKey).srem(this.nodesKey, this.nodeId).publish(this.ctlKey, packValue(['b', this.nodeId]))), 1000);
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'Redis bus: could not remove this node cleanly; it expires');
      }
    }
    if (this.held.length > 0) {
      this.stats.dropped += this.held.length;
      this.logger.warn({ dropped: this.held.length }, 'Redis bus closed with held messages; dropped');
      this.held = [];
    }
    this.rejectInflight(new Error('Redis bus closed'));
    this.handlers.clear();
    this.countWatchers.clear();
    this.pub.disconnect();
    this.sub.disconnect();
  }

  // ---- connections and outage ------------------------------------------------------

  private watch(conn: Redis, role: 'publisher' | 'subscriber'): void {
    conn.on('ready', () => {
      if (role === 'publisher') this.pubUp = true;
      else this.subUp = true;
      this.maybeRestore();
    });
    conn.on('close', () => {
      if (role === 'publisher') this.pubUp = false;
      else {
        this.subUp = false;
        this.subscribed.clear();
      }
      this.lost(role);
    });
    conn.on('error', (err: Error) => {
      if (this.state === 'closed' || this.connErrorLogged) return;
      this.connErrorLogged = true;
      this.logger.warn({ role, err: err.message }, 'Redis bus connection error; retrying');
    });
  }

  private lost(role: string): void {
    if (this.state === 'closed') return;
    this.restoreToken = null;
    this.rejectInflight(new Error(`Redis ${role} connection lost`));
    if (this.state === 'ready') {
      this.state = 'connecting';
      this.lostAt = Date.now();
      this.refusing = false;
      this.expiredSinceLost = 0;
      this.logger.warn(
        { role, maxPending: this.maxPending, maxPendingAgeMs: this.maxPendingAgeMs },
        'Redis bus lost; not ready, holding publishes'
      );
    }
    // Not ready now: nobody waits for a subscription any more (the restore subscribes all).
    this.settleSubWaiters();
  }

  private maybeRestore(): void {
    if (this.state !== 'connecting' || this.restoreToken !== null || !this.pubUp || !this.subUp) return;
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

  /** After (re)connecting: subscriptions, own hash, others' hashes, held messages, ready. */
  private async restore(token: object): Promise<void> {
    const want = [this.ctlKey, this.allKey];
    for (const ch of this.localCounts.keys()) if (ch !== ALL_CHANNEL) want.push(this.channelKey(ch));
    this.interestDirty.clear();
    const wanted = new Set(want);
    const stale = [...this.subscribed].filter((c) => !wanted.has(c));
    await Promise.all([this.subscribeAll(want.filter((c) => !this.subscribed.has(c))), this.unsubscribeAll(stale)]);
    if (this.restoreToken !== token) return;
    await this.writeFullState();
    if (this.restoreToken !== token) return;
    this.graceUntil = Date.now() + this.nodeTtlMs;
    await this.resync();
    if (this.restoreToken !== token) return;
    if (this.held.length > 0) await this.awaitPeers(token, Date.now() + this.nodeTtlMs);
    if (this.restoreToken !== token) return;
    // Synchronously from here: held messages go out before any new one.
    const now = Date.now();
    this.expireHeld(now);
    const sent = this.held.length;
    for (const h of this.held) this.send(h.target, h.bytes);
    this.held = [];
    const outage = now - this.lostAt;
    this.state = 'ready';
    this.restoreToken = null;
    this.connErrorLogged = false;
    this.logger.info({ nodeId: this.nodeId, heldSent: sent, heldDropped: this.expiredSinceLost, outageMs: outage, nodes: this.remote.size }, 'Redis bus ready');
    for (const w of [...this.readyWaiters]) w();
    if (this.dirty.size > 0 || this.interestDirty.size > 0) this.scheduleFlush();
  }

  /**
   * Held messages are meant for the nodes that were there before the outage. After a
   * Redis restart those subscribe again at their own pace: wait (until `deadline`) for
   * each one's hash to be back, which it writes once re-subscribed, so the held messages
   * are not published to nobody.
   */
  private async awaitPeers(token: object, deadline: number): Promise<void> {
    let ids = [...this.remote.keys()];
    while (ids.length > 0 && this.restoreToken === token) {
      const p = this.pub.pipeline();
      for (const id of ids) p.exists(this.nodeKey(id));
      const res = await this.exec(p);
      ids = ids.filter((_, i) => res[i] === 0);
      if (ids.length === 0 || Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private hold(target: string, bytes: Buffer): boolean {
    const now = Date.now();
    this.expireHeld(now);
    if (this.held.length >= this.maxPending || now - this.lostAt > this.maxPendingAgeMs) {
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
  private expireHeld(now: number): void {
    const limit = now - this.maxPendingAgeMs;
    let n = 0;
    while (n < this.held.length && this.held[n]!.at < limit) n++;
    if (n === 0) return;
    this.held.splice(0, n);
    this.stats.dropped += n;
    if (this.expiredSinceLost === 0) this.logger.warn({ maxPendingAgeMs: this.maxPendingAgeMs }, 'Redis bus: dropping held messages older than the limit');
    this.expiredSinceLost += n;
  }

  // ---- data plane ------------------------------------------------------------------

  private channelKey(channel: string): string {
    return channel === ALL_CHANNEL ? this.allKey : `${this.prefix}ch:${channel}`;
  }

  private nodeKey(id: string): string {
    return `${this.prefix}node:${id}`;
  }

  private encode(message: BusMessage): Buffer {
    const f = message.frame;
    // The JSON codec's hint is not data: the receiver recomputes it while decoding.
    const frame = f.type === 'event' ? { type: f.type, channel: f.channel, data: f.data === undefined ? null : f.data, from: f.from, id: f.id } : f;
    return packValue([this.nodeId, message.exclude, frame]);
  }

  private send(target: string, bytes: Buffer): void {
    this.stats.published++;
    this.pub.publish(target, bytes).catch((err: Error) => {
      // Lost with the connection (or refused by Redis): at most once, never resent.
      this.stats.dropped++;
      this.logger.debug({ err: err.message }, 'Redis bus: a publish failed');
    });
  }

  private onRedisMessage(channel: Buffer, payload: Buffer): void {
    if (this.state === 'closed') return;
    if (channel.length === this.ctlKey.length && channel.toString() === this.ctlKey) {
      this.onControl(payload);
      return;
    }
    const r = unpackValue(payload, MAX_DATA_DEPTH + 2);
    if (!r.ok || !Array.isArray(r.value) || r.value.length < 3) {
      this.malformed(payload);
      return;
    }
    const [origin, exclude, frame] = r.value as [unknown, unknown, unknown];
    if (origin === this.nodeId) return;
    if (
      frame === null ||
      typeof frame !== 'object' ||
      typeof (frame as { type?: unknown }).type !== 'string' ||
      typeof (frame as { channel?: unknown }).channel !== 'string' ||
      (exclude !== null && typeof exclude !== 'string')
    ) {
      this.malformed(payload);
      return;
    }
    const f = frame as ServerFrame & { channel: string };
    if (f.type === 'event') f.hasBinary = r.hasBinary;
    if (f.channel !== ALL_CHANNEL && !this.localCounts.has(f.channel)) {
      this.stats.stray++;
      return;
    }
    this.stats.received++;
    this.deliver({ channel: f.channel, frame: f, exclude: exclude as string | null });
  }

  private deliver(message: BusMessage): void {
    for (const h of this.handlers) {
      try {
        h(message);
      } catch (err) {
        this.logger.error({ err }, 'Redis bus: a message handler threw');
      }
    }
  }

  private malformed(payload: Buffer): void {
    this.stats.malformed++;
    if (this.stats.malformed === 1) this.logger.warn({ bytes: payload.length }, 'Redis bus: undecodable message ignored (is another program publishing under this prefix?)');
  }

  // ---- this node's state in Redis --------------------------------------------------

  private trackMember(type: 'joined' | 'left', channel: string, data: MemberInfo): void {
    let m = this.localMembers.get(channel);
    const field = `m:${channel} ${data.session}`;
    if (type === 'joined') {
      if (m === undefined) this.localMembers.set(channel, (m = new Map()));
      m.set(data.session, data.user);
      this.dirty.set(field, JSON.stringify(data.user));
    } else {
      if (m === undefined || !m.delete(data.session)) return;
      if (m.size === 0) this.localMembers.delete(channel);
      this.dirty.set(field, null);
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.state === 'closed') return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushing = this.flushing
        .then(() => this.flush())
        .catch((err: unknown) => {
          this.logger.debug({ err: (err as Error).message }, 'Redis bus: state write interrupted (rewritten on reconnect)');
        })
        .then(() => this.settleSubWaiters());
    });
  }

  /**
   * Writes what changed since the last write: subscriptions first (a count is
   * announced only once its channel's traffic arrives here), then the hash delta and
   * its notice, in one transaction. Not ready: nothing (restore rewrites everything).
   */
  private async flush(): Promise<void> {
    if (this.state !== 'ready') return;
    const subs: string[] = [];
    const unsubs: string[] = [];
    for (const ch of this.interestDirty) {
      const key = this.channelKey(ch);
      const want = this.localCounts.has(ch);
      if (want && !this.subscribed.has(key)) subs.push(key);
      else if (!want && this.subscribed.has(key)) unsubs.push(key);
    }
    this.interestDirty.clear();
    const unsubscribed = this.unsubscribeAll(unsubs);
    unsubscribed.catch(() => undefined);
    await this.subscribeAll(subs);
    if (this.dirty.size === 0 || this.state !== 'ready') return;
    const seq = ++this.seq;
    const set: string[] = ['seq', String(seq)];
    const del: string[] = [];
    const notice: unknown[] = ['d', this.nodeId, seq];
    for (const [field, value] of this.dirty) {
      if (value === null) del.push(field);
      else set.push(field, value);
      notice.push(field, value);
    }
    this.dirty.clear();
    const m = this.pub.multi().exists(this.ownKey).hset(this.ownKey, ...set);
    if (del.length > 0) m.hdel(this.ownKey, ...del);
    m.pexpire(this.ownKey, this.nodeTtlMs).publish(this.ctlKey, packValue(notice));
    const res = await this.exec(m);
    // The hash had expired (a long pause): what was just written is partial; rewrite it.
    if (res[0] === 0) await this.writeFullState();
  }

  /**
   * Resolves the `whenSubscribed` waiters whose wait is over: the channel's SUBSCRIBE is
   * acknowledged, nobody here wants it any more, or the bus is not ready (all of them).
   */
  private settleSubWaiters(): void {
    for (const [channel, resolvers] of this.subWaiters) {
      const key = this.channelKey(channel);
      const over = this.state !== 'ready' || !this.localCounts.has(channel) || (this.subscribed.has(key) && !this.unacked.has(key));
      if (!over) continue;
      this.subWaiters.delete(channel);
      for (const r of resolvers) r();
    }
  }

  /** Replaces this node's hash by its whole state and tells the others to re-read it. */
  private async writeFullState(): Promise<void> {
    const seq = ++this.seq;
    const fields: string[] = ['seq', String(seq)];
    for (const [ch, n] of this.localCounts) fields.push(`c:${ch}`, String(n));
    for (const [ch, m] of this.localMembers) for (const [s, u] of m) fields.push(`m:${ch} ${s}`, JSON.stringify(u));
    this.dirty.clear();
    await this.exec(
      this.pub
        .multi()
        .del(this.ownKey)
        .hset(this.ownKey, ...fields)
        .pexpire(this.ownKey, this.nodeTtlMs)
        .sadd(this.nodesKey, this.nodeId)
        .publish(this.ctlKey, packValue(['s', this.nodeId, seq]))
    );
  }

  /**
   * Every `heartbeatMs`: refreshes this node's TTL and checks that both connections
   * answer. One that has not answered within `nodeTtlMs - heartbeatMs` (a network that
   * drops packets, a stalled Redis) is dropped and reconnected, so the outage is seen
   * and publishes stop piling up in a socket that goes nowhere.
   */
  private async heartbeat(): Promise<void> {
    if (this.state !== 'ready') {
      this.expireHeld(Date.now());
      return;
    }
    if (this.heartbeatBusy) return;
    this.heartbeatBusy = true;
    const limitMs = this.nodeTtlMs - this.heartbeatMs;
    try {
      const [res] = await Promise.all([
        this.answered(this.pub, 'publisher', this.exec(this.pub.multi().pexpire(this.ownKey, this.nodeTtlMs).sadd(this.nodesKey, this.nodeId)), limitMs),
        this.answered(this.sub, 'subscriber', this.guard(this.sub.ping()), limitMs)
      ]);
      if (res[0] === 0) {
        this.logger.warn('Redis bus: this node\'s key had expired (a pause or a Redis restart); rewriting it');
        await this.writeFullState();
      }
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'Redis bus: heartbeat failed');
    } finally {
      this.heartbeatBusy = false;
    }
  }

  /** `p`, or — when `conn` does not answer within `ms` — a reconnection of `conn`. */
  private async answered<T>(conn: Redis, role: string, p: Promise<T>, ms: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis ${role} did not answer within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([p, timeout]);
    } catch (err) {
      if (this.state === 'ready' && (err as Error).message.includes('did not answer')) {
        this.logger.warn({ role, ms }, 'Redis bus: no answer from Redis; reconnecting');
        // Lost now: the socket may take a while to close when the network drops packets.
        if (conn === this.pub) this.pubUp = false;
        else {
          this.subUp = false;
          this.subscribed.clear();
        }
        this.lost(role);
        conn.disconnect(true);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async subscribeAll(channels: string[]): Promise<void> {
    if (channels.length === 0) return;
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) {
      const chunk = channels.slice(i, i + SUBSCRIBE_CHUNK);
      for (const c of chunk) {
        this.subscribed.add(c);
        this.unacked.add(c);
      }
      const done = (): void => {
        for (const c of chunk) this.unacked.delete(c);
      };
      const failed = (err: unknown): never => {
        // Refused (not a lost connection, which the restore handles): not subscribed;
        // try again with the next state write.
        for (const c of chunk) this.subscribed.delete(c);
        if (this.state === 'ready') {
          const head = `${this.prefix}ch:`;
          for (const c of chunk) if (c.startsWith(head)) this.interestDirty.add(c.slice(head.length));
          this.scheduleFlush();
        }
        throw err;
      };
      calls.push(this.guard(this.sub.subscribe(...chunk)).catch(failed).finally(done));
    }
    await Promise.all(calls);
  }

  private async unsubscribeAll(channels: string[]): Promise<void> {
    if (channels.length === 0) return;
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) {
      const chunk = channels.slice(i, i + SUBSCRIBE_CHUNK);
      for (const c of chunk) this.subscribed.delete(c);
      calls.push(this.guard(this.sub.unsubscribe(...chunk)));
    }
    await Promise.all(calls);
  }

  // ---- the other nodes -------------------------------------------------------------

  private onControl(payload: Buffer): void {
    const r = unpackValue(payload, 4);
    if (!r.ok || !Array.isArray(r.value) || typeof r.value[0] !== 'string' || typeof r.value[1] !== 'string') {
      this.malformed(payload);
      return;
    }
    const [kind, node] = r.value as [string, string, ...unknown[]];
    if (node === this.nodeId) return;
    if (kind === 'b') {
      this.dropNode(node, false);
      return;
    }
    const seq = r.value[2];
    if (typeof seq !== 'number') {
      this.malformed(payload);
      return;
    }
    let n = this.remote.get(node);
    if (kind === 's') {
      if (n === undefined || seq > n.seq) void this.fetchNode(node);
      return;
    }
    if (kind !== 'd') return;
    const fields = r.value.slice(3);
    if (n === undefined) {
      n = { seq: 0, counts: new Map(), members: new Map(), pending: null, refetch: false };
      this.remote.set(node, n);
    }
    if (n.pending !== null) n.pending.push({ seq, fields });
    if (seq <= n.seq) return;
    const gap = seq > n.seq + 1;
    this.applyFields(n, fields);
    n.seq = seq;
    // An unknown node or a missed delta: the cache lacks part of its hash.
    if (gap) void this.fetchNode(node);
  }

  /** Applies `field, value|null, …` pairs of a node's hash to its cached view. */
  private applyFields(n: RemoteNode, fields: unknown[]): void {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = fields[i];
      const value = fields[i + 1];
      if (typeof field !== 'string' || (value !== null && typeof value !== 'string')) continue;
      this.applyField(n, field, value);
    }
  }

  private applyField(n: RemoteNode, field: string, value: string | null): void {
    if (field.startsWith('c:')) {
      const ch = field.slice(2);
      const count = value === null ? 0 : Number(value);
      this.setRemote(n, ch, Number.isFinite(count) && count > 0 ? count : 0);
    } else if (field.startsWith('m:')) {
      const sp = field.lastIndexOf(' ');
      if (sp < 2) return;
      const ch = field.slice(2, sp);
      const session = field.slice(sp + 1);
      let m = n.members.get(ch);
      if (value === null) {
        if (m?.delete(session) && m.size === 0) n.members.delete(ch);
        return;
      }
      let user: string | null = null;
      try {
        const u: unknown = JSON.parse(value);
        user = typeof u === 'string' ? u : null;
      } catch {
        user = null;
      }
      if (m === undefined) n.members.set(ch, (m = new Map()));
      m.set(session, user);
    }
  }

  private setRemote(n: RemoteNode, channel: string, count: number): void {
    const old = n.counts.get(channel) ?? 0;
    if (old === count) return;
    if (count > 0) n.counts.set(channel, count);
    else n.counts.delete(channel);
    const t = (this.totals.get(channel) ?? 0) + count - old;
    if (t > 0) this.totals.set(channel, t);
    else this.totals.delete(channel);
    for (const w of this.countWatchers) {
      try {
        w(channel, t > 0 ? t : 0);
      } catch (err) {
        this.logger.error({ err }, 'Redis bus: a count handler threw');
      }
    }
  }

  /**
   * Re-reads a node's hash. Deltas that arrive meanwhile are kept and re-applied on top
   * of what was read when newer, so the result is exact whatever the arrival order.
   */
  private async fetchNode(id: string): Promise<void> {
    let n = this.remote.get(id);
    if (n === undefined) {
      n = { seq: -1, counts: new Map(), members: new Map(), pending: null, refetch: false };
      this.remote.set(id, n);
    }
    if (n.pending !== null) {
      n.refetch = true; // the read in flight may predate what made us ask
      return;
    }
    do {
      n.refetch = false;
      n.pending = [];
      let hash: Record<string, string>;
      try {
        hash = await this.guard(this.pub.hgetall(this.nodeKey(id)));
      } catch {
        n.pending = null;
        return;
      }
      const pending = n.pending;
      n.pending = null;
      if (this.remote.get(id) !== n || this.state === 'closed') return; // dropped meanwhile
      const seq = Number(hash.seq);
      if (!Number.isFinite(seq)) {
        // Gone (or not written yet): the resync decides whether it is dead.
        if (n.seq < 0) this.remote.delete(id);
        return;
      }
      if (seq >= n.seq || pending.length > 0) {
        // Rebuild: clear the cached view, apply the hash, then the newer deltas.
        for (const ch of [...n.counts.keys()]) this.setRemote(n, ch, 0);
        n.members.clear();
        for (const [field, value] of Object.entries(hash)) this.applyField(n, field, value);
        n.seq = seq;
        for (const d of pending) {
          if (d.seq <= n.seq) continue;
          if (d.seq > n.seq + 1) n.refetch = true; // deltas between were missed
          this.applyFields(n, d.fields);
          n.seq = d.seq;
        }
      }
    } while (n.refetch);
  }

  /** Forgets a node; when it died, its private-channel members are announced as `left` here. */
  private dropNode(id: string, dead: boolean): void {
    const n = this.remote.get(id);
    if (n === undefined) return;
    this.remote.delete(id);
    for (const ch of [...n.counts.keys()]) this.setRemote(n, ch, 0);
    if (!dead) return;
    let lefts = 0;
    for (const [channel, members] of n.members) {
      if (!this.localCounts.has(channel)) continue;
      for (const [session, user] of members) {
        const frame: ServerFrame = { type: 'left', channel, data: { session, user } };
        this.deliver({ channel, frame, exclude: null, announced: true });
        lefts++;
      }
    }
    this.logger.warn({ node: id, lefts }, 'Redis bus: a node stopped answering; its members are gone');
  }

  private async periodicResync(): Promise<void> {
    if (this.state !== 'ready' || this.resyncBusy) return;
    this.resyncBusy = true;
    try {
      await this.resync();
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'Redis bus: resync failed');
    } finally {
      this.resyncBusy = false;
    }
  }

  /**
   * Compares every node's `seq` in Redis with the cache: re-reads the nodes that moved
   * on, forgets (as dead) those whose hash expired — but not within `nodeTtlMs` of this
   * node's own reconnection, when the others may still be rewriting theirs.
   */
  private async resync(): Promise<void> {
    const ids = new Set(await this.guard(this.pub.smembers(this.nodesKey)));
    for (const id of this.remote.keys()) ids.add(id);
    ids.delete(this.nodeId);
    if (ids.size === 0) return;
    const list = [...ids];
    const p = this.pub.pipeline();
    for (const id of list) p.hget(this.nodeKey(id), 'seq');
    const res = await this.exec(p);
    const fetches: Array<Promise<void>> = [];
    const mayDeclareDead = Date.now() >= this.graceUntil;
    list.forEach((id, i) => {
      const v = res[i];
      if (v === null || v === undefined) {
        if (!mayDeclareDead) return;
        this.dropNode(id, true);
        this.pub.srem(this.nodesKey, id).catch(() => undefined);
        return;
      }
      const seq = Number(v);
      const n = this.remote.get(id);
      if (n === undefined || seq > n.seq) fetches.push(this.fetchNode(id));
    });
    await Promise.all(fetches);
  }

  // ---- plumbing ----------------------------------------------------------------------

  /** Runs a MULTI or pipeline; returns the replies, throwing the first error. */
  private async exec(m: ChainableCommander): Promise<unknown[]> {
    const res = await this.guard(m.exec());
    if (res === null) throw new Error('Redis transaction aborted');
    return res.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
  }

  /**
   * Awaits a Redis call, but rejects as soon as a connection is lost: ioredis leaves
   * the commands of a dropped connection pending forever when it does not resend them.
   */
  private guard<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.inflight.add(reject);
      p.then(
        (v) => {
          this.inflight.delete(reject);
          resolve(v);
        },
        (err: unknown) => {
          this.inflight.delete(reject);
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      );
    });
  }

  private rejectInflight(err: Error): void {
    const all = [...this.inflight];
    this.inflight.clear();
    for (const r of all) r(err);
  }

  private withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(t);
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      );
    });
  }
}
