/**
 * One channel of a client: its listeners, its position (for recovery and for dropping
 * duplicates) and its requests. A Subscription outlives connections: the client
 * resubscribes it after every reconnect with `since` set to the last position seen.
 */
import { Emitter } from './emitter.js';
import type { ChannelEvent, Member, Position } from './wire.js';

/** A subscription's state. */
export type SubscriptionState = 'subscribing' | 'subscribed' | 'unauthorized' | 'unsubscribed';

/** What `subscribed` told, each time the server confirms the subscription. */
export interface SubscribedInfo {
  /** True on a resubscribe whose gap was filled (the missed events follow); absent on a first subscribe. */
  recovered?: boolean;
  /** The channel position: where a first subscribe starts, where a recovery's replay ends. */
  offset?: number;
  epoch?: string;
  /** Whether this was a resubscribe after a reconnect. */
  resubscribed: boolean;
}

/**
 * Events after `since` may be lost to this subscription: the application must resync
 * from its own backend. `reason`: `server` (a resubscribe answered `recovered:false`),
 * `unconfirmed` (a resubscribe answered without saying whether it recovered), `epoch`
 * (a live event in another epoch: the channel's sequence restarted).
 */
export interface UnrecoveredInfo {
  reason: 'server' | 'unconfirmed' | 'epoch';
  /** The last position delivered (or where the subscription started). */
  since: Position;
  /** Where the subscription goes on from (live events follow it), when known. */
  offset?: number;
  epoch?: string;
}

/** History request options. */
export interface HistoryOptions {
  /** Return the events after this position (default: the latest ones). */
  since?: Position;
  /** At most this many events (the server bounds it too). */
  limit?: number;
}

/** A history answer. */
export interface HistoryResult {
  events: ChannelEvent[];
  /** The channel's latest offset and its epoch. */
  offset?: number;
  epoch?: string;
  /** False when the server could not return every event asked for. */
  complete: boolean;
}

/** A presence answer. */
export interface PresenceResult {
  members: Member[];
  /** True when the server cut the list at its `--presence-max`. */
  truncated: boolean;
}

/** The events of a Subscription. */
export interface SubscriptionEvents {
  /** An event of the channel, live or recovered, once each and in order. */
  event: ChannelEvent;
  /** A member joined (private channels). */
  joined: Member;
  /** A member left (private channels). */
  left: Member;
  /** The server confirmed the subscription (after every (re)subscribe). */
  subscribed: SubscribedInfo;
  /** A resubscribe could not recover the gap (`recovered:false`). */
  unrecovered: UnrecoveredInfo;
  /** The server refused the subscription (a private channel without a valid token). */
  unauthorized: { channel: string };
  /** An `error` frame about this channel (the reasons, as docs/protocol.md lists them). */
  error: { errors: string[] };
}

/** What a Subscription needs of its client. */
export interface SubscriptionHost {
  history(channel: string, options: HistoryOptions): Promise<HistoryResult>;
  presence(channel: string): Promise<PresenceResult>;
  unsubscribe(sub: Subscription): void;
}

/** A channel subscription; created by `client.subscribe(channel, handler)`. */
export class Subscription extends Emitter<SubscriptionEvents> {
  /** The subscription's state; `subscribing` again while a reconnect resubscribes. */
  state: SubscriptionState = 'subscribing';
  /** Events dropped because their offset was already delivered (a replay overlapping live events). */
  duplicates = 0;
  /** The offset of the last event delivered, in `epoch`. */
  private lastOffset: number | null = null;
  /** Where the server said the subscription started (plain subscribe) or resumed (recovered:false). */
  private startOffset: number | null = null;
  private epoch: string | null = null;
  /** Whether the server confirmed this subscription at least once. */
  private confirmed = false;

  constructor(
    readonly channel: string,
    private readonly host: SubscriptionHost
  ) {
    super();
  }

  /** The last position seen (an event's, or where the subscription started), or null before one is known. */
  get position(): Position | null {
    const offset = this.lastOffset ?? this.startOffset;
    return offset === null || this.epoch === null ? null : { offset, epoch: this.epoch };
  }

  /** Asks the server for the channel's past events. */
  history(options: HistoryOptions = {}): Promise<HistoryResult> {
    return this.host.history(this.channel, options);
  }

  /** Asks the server who is in the channel, on every worker and node. */
  presence(): Promise<PresenceResult> {
    return this.host.presence(this.channel);
  }

  /** Leaves the channel and drops every listener. */
  unsubscribe(): void {
    if (this.state === 'unsubscribed') return;
    this.state = 'unsubscribed';
    this.host.unsubscribe(this);
    this.removeAllListeners();
  }

  /** @internal The since of the next subscribe. */
  sinceForResubscribe(): Position | undefined {
    return this.position ?? undefined;
  }

  /** @internal A `subscribed` answer; `since` is what the subscribe asked for. */
  handleSubscribed(info: { recovered?: boolean; offset?: number; epoch?: string }, since: Position | undefined): void {
    const resubscribed = this.confirmed;
    this.confirmed = true;
    this.state = 'subscribed';
    // A resubscribe not answered `recovered:true` filled nothing: live events follow the
    // new position, in a possibly new epoch.
    const lost = since !== undefined && info.recovered !== true;
    if (lost) {
      this.lastOffset = null;
      this.startOffset = info.offset ?? null;
      this.epoch = info.epoch ?? null;
    } else if (!since && info.offset !== undefined && info.epoch !== undefined) {
      // Not used to drop events (one sent while the subscription was routed may carry an
      // offset at or below it): only where a resubscribe resumes when no event came.
      if (this.epoch !== info.epoch) this.lastOffset = null;
      this.startOffset = info.offset;
      this.epoch = info.epoch;
    }
    const payload: SubscribedInfo = { resubscribed };
    if (info.recovered !== undefined) payload.recovered = info.recovered;
    if (info.offset !== undefined) payload.offset = info.offset;
    if (info.epoch !== undefined) payload.epoch = info.epoch;
    this.emit('subscribed', payload);
    if (lost) this.lose(info.recovered === false ? 'server' : 'unconfirmed', since, info.offset, info.epoch);
  }

  /** @internal An event: delivered unless its offset was already delivered in its epoch. */
  handleEvent(e: ChannelEvent): void {
    if (e.offset !== undefined && e.epoch !== undefined) {
      const prev = this.position;
      if (this.epoch === e.epoch && this.lastOffset !== null && e.offset <= this.lastOffset) {
        this.duplicates++;
        return;
      }
      // The server never changes the epoch under a subscription unless the channel's
      // sequence restarted (its sequencer lost it): events may be lost, say so. (Skipped
      // offsets are no sign: the session's own broadcasts are never sent back to it.)
      if (prev !== null && prev.epoch !== e.epoch) this.lose('epoch', prev, e.offset - 1, e.epoch);
      this.epoch = e.epoch;
      this.lastOffset = e.offset;
    }
    this.emit('event', e);
  }

  private lose(reason: UnrecoveredInfo['reason'], since: Position, offset: number | undefined, epoch: string | undefined): void {
    const u: UnrecoveredInfo = { reason, since };
    if (offset !== undefined) u.offset = offset;
    if (epoch !== undefined) u.epoch = epoch;
    this.emit('unrecovered', u);
  }

  /** @internal Other frames about the channel. */
  deliver<K extends 'joined' | 'left' | 'error' | 'unauthorized'>(kind: K, payload: SubscriptionEvents[K]): void {
    if (kind === 'unauthorized') this.state = 'unauthorized';
    this.emit(kind, payload);
  }

  /** @internal The connection dropped: subscribing again once it is back. */
  markLost(): void {
    if (this.state === 'subscribed') this.state = 'subscribing';
  }
}
