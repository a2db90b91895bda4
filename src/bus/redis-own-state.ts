import type { Logger } from 'pino';
import { ALL_CHANNEL, type MemberInfo } from '../protocol/frames.js';
import { encodeBye, encodeDelta, encodeRewrite } from './redis-codec.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import type { BusState } from './redis-outage.js';
import type { Members } from './redis-nodes-cache.js';

const SUBSCRIBE_CHUNK = 1000;

/**
 * This node's state in Redis: its subscriptions, its hash (counts and private-channel
 * members, see redis-keys.ts) and the notices of its changes. Changes are batched per
 * event-loop turn; a new channel's count is announced only once its SUBSCRIBE is
 * acknowledged, so a node counted by the others already receives the channel's traffic.
 * A new member is in effect (`whenSubscribed`) once its channel is subscribed AND the
 * count with it is written and announced: Redis has then pushed the notice to every
 * other node, ahead of anything they can hear from the member's client after its
 * `subscribed`, so their `received.count` includes it.
 */
export class OwnState {
  /** channel → local members (> 0). */
  private readonly localCounts = new Map<string, number>();
  /** channel → the count last written to Redis and announced (> 0). */
  private readonly written = new Map<string, number>();
  /** From the joined/left notices this node publishes. */
  private readonly localMembers: Members = new Map();
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
  private readonly ownKey: string;
  private seq = 0;
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly nodeTtlMs: number,
    private readonly logger: Logger,
    private readonly state: () => BusState
  ) {
    this.ownKey = keys.node(nodeId);
  }

  /** Whether this node has members of `channel`. */
  has(channel: string): boolean {
    return this.localCounts.has(channel);
  }

  /** Whether changes wait for the next write. */
  get changed(): boolean {
    return this.dirty.size > 0 || this.interestDirty.size > 0;
  }

  setCount(channel: string, count: number): void {
    if (this.state() === 'closed') return;
    const had = this.localCounts.has(channel);
    if (count > 0) this.localCounts.set(channel, count);
    else this.localCounts.delete(channel);
    this.dirty.set(`c:${channel}`, count > 0 ? String(count) : null);
    if (channel !== ALL_CHANNEL && had !== count > 0) this.interestDirty.add(channel);
    this.scheduleFlush();
  }

  /** Records a member: a private channel's from a joined/left notice this node publishes, a public one's from `trackMember`. */
  trackMember(type: 'joined' | 'left', channel: string, data: MemberInfo): void {
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

  /** See `Bus.whenSubscribed`: not ready, null (the restore subscribes everything). */
  whenSubscribed(channel: string): Promise<void> | null {
    if (this.state() !== 'ready' || channel === ALL_CHANNEL || !this.localCounts.has(channel)) return null;
    if (this.inEffect(channel)) return null;
    return new Promise((resolve) => {
      const list = this.subWaiters.get(channel);
      if (list === undefined) this.subWaiters.set(channel, [resolve]);
      else list.push(resolve);
    });
  }

  /**
   * Resolves the `whenSubscribed` waiters whose wait is over: the channel's SUBSCRIBE is
   * acknowledged, nobody here wants it any more, or the bus is not ready (all of them).
   */
  settleSubWaiters(): void {
    for (const [channel, resolvers] of this.subWaiters) {
      const over = this.state() !== 'ready' || !this.localCounts.has(channel) || this.inEffect(channel);
      if (!over) continue;
      this.subWaiters.delete(channel);
      for (const r of resolvers) r();
    }
  }

  /** Subscribed (acknowledged), and the others were told a count at least the current one. */
  private inEffect(channel: string): boolean {
    const key = this.keys.channel(channel);
    return this.subscribed.has(key) && !this.unacked.has(key) && (this.written.get(channel) ?? 0) >= (this.localCounts.get(channel) ?? 0);
  }

  /** The subscriber connection dropped: it holds no subscription any more. */
  subscriptionsLost(): void {
    this.subscribed.clear();
  }

  /** After (re)connecting: subscribes to everything wanted, drops what is not. */
  async resubscribe(): Promise<void> {
    const want = [this.keys.ctl, this.keys.all];
    for (const ch of this.localCounts.keys()) if (ch !== ALL_CHANNEL) want.push(this.keys.channel(ch));
    this.interestDirty.clear();
    const wanted = new Set(want);
    const stale = [...this.subscribed].filter((c) => !wanted.has(c));
    await Promise.all([this.subscribeAll(want.filter((c) => !this.subscribed.has(c))), this.unsubscribeAll(stale)]);
  }

  /** Replaces this node's hash by its whole state and tells the others to re-read it. */
  async writeFull(): Promise<void> {
    const seq = ++this.seq;
    const fields: string[] = ['seq', String(seq)];
    for (const [ch, n] of this.localCounts) fields.push(`c:${ch}`, String(n));
    for (const [ch, m] of this.localMembers) for (const [s, u] of m) fields.push(`m:${ch} ${s}`, JSON.stringify(u));
    const counts = new Map(this.localCounts);
    this.dirty.clear();
    await this.link.exec(
      this.link.pub
        .multi()
        .del(this.ownKey)
        .hset(this.ownKey, ...fields)
        .pexpire(this.ownKey, this.nodeTtlMs)
        .sadd(this.keys.nodes, this.nodeId)
        .publish(this.keys.ctl, encodeRewrite(this.nodeId, seq))
    );
    this.written.clear();
    for (const [ch, n] of counts) this.written.set(ch, n);
  }

  /** Refreshes the TTL of this node's hash; true when it had expired already. */
  async refreshTtl(): Promise<boolean> {
    const res = await this.link.exec(this.link.pub.multi().pexpire(this.ownKey, this.nodeTtlMs).sadd(this.keys.nodes, this.nodeId));
    return res[0] === 0;
  }

  /** Removes this node's hash and says goodbye (a clean stop). */
  async remove(): Promise<void> {
    await this.link.exec(this.link.pub.multi().del(this.ownKey).srem(this.keys.nodes, this.nodeId).publish(this.keys.ctl, encodeBye(this.nodeId)));
  }

  scheduleFlush(): void {
    if (this.flushScheduled || this.state() === 'closed') return;
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
    if (this.state() !== 'ready') return;
    const subs: string[] = [];
    const unsubs: string[] = [];
    for (const ch of this.interestDirty) {
      const key = this.keys.channel(ch);
      const want = this.localCounts.has(ch);
      if (want && !this.subscribed.has(key)) subs.push(key);
      else if (!want && this.subscribed.has(key)) unsubs.push(key);
    }
    this.interestDirty.clear();
    const unsubscribed = this.unsubscribeAll(unsubs);
    unsubscribed.catch(() => undefined);
    await this.subscribeAll(subs);
    if (this.dirty.size === 0 || this.state() !== 'ready') return;
    const seq = ++this.seq;
    const set: string[] = ['seq', String(seq)];
    const del: string[] = [];
    const notice: Array<string | null> = [];
    const counts: Array<[string, number]> = [];
    for (const [field, value] of this.dirty) {
      if (value === null) del.push(field);
      else set.push(field, value);
      notice.push(field, value);
      if (field.startsWith('c:')) counts.push([field.slice(2), value === null ? 0 : Number(value)]);
    }
    this.dirty.clear();
    const m = this.link.pub.multi().exists(this.ownKey).hset(this.ownKey, ...set);
    if (del.length > 0) m.hdel(this.ownKey, ...del);
    m.pexpire(this.ownKey, this.nodeTtlMs).publish(this.keys.ctl, encodeDelta(this.nodeId, seq, notice));
    const res = await this.link.exec(m);
    for (const [ch, n] of counts) {
      if (n > 0) this.written.set(ch, n);
      else this.written.delete(ch);
    }
    // The hash had expired (a long pause): what was just written is partial; rewrite it.
    if (res[0] === 0) await this.writeFull();
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
        if (this.state() === 'ready') {
          for (const c of chunk) {
            const ch = this.keys.channelOf(c);
            if (ch !== null) this.interestDirty.add(ch);
          }
          this.scheduleFlush();
        }
        throw err;
      };
      calls.push(this.link.guard(this.link.sub.subscribe(...chunk)).catch(failed).finally(done));
    }
    await Promise.all(calls);
  }

  private async unsubscribeAll(channels: string[]): Promise<void> {
    if (channels.length === 0) return;
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) {
      const chunk = channels.slice(i, i + SUBSCRIBE_CHUNK);
      for (const c of chunk) this.subscribed.delete(c);
      calls.push(this.link.guard(this.link.sub.unsubscribe(...chunk)));
    }
    await Promise.all(calls);
  }
}
