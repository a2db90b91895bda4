import { PRIVATE_PREFIX } from '../protocol/frames.js';
import { newId } from '../protocol/ids.js';
import type { WebhookEventName } from '../config/webhook-targets.js';
import type { WebhookEvent } from './webhook-event.js';
import type { DurableLogger } from '../store/durable/retry-policy.js';

/** Events held behind a pending decision (Redis away) past which new ones are dropped. */
export const MAX_WAITING_EVENTS = 100_000;
/** A drop is logged again at most this often. */
const DROP_LOG_MS = 30_000;

/** What the tracker is told of a session: the hub's member and the agent's session info both fit. */
export interface TrackedSession {
  readonly id: string;
  readonly userId: string | null;
}

/**
 * Who sends a channel's `channel_occupied`/`channel_vacated` when several nodes share the
 * channel (see webhook-election.ts): resolves true when this node is the one.
 */
export interface ChannelDecider {
  joined(channel: string): Promise<boolean>;
  left(channel: string): Promise<boolean>;
}

/** An event waiting for its turn: `send` is null until its decision is known. */
interface Step {
  event: WebhookEvent;
  send: boolean | null;
}

interface Entry {
  user: string | null;
  channels: Set<string>;
}

/**
 * Turns membership changes into webhook events. It keeps every live session it was told
 * of and each channel's member count over all of them: fed by one `serve` node's hub, the
 * counts are the node's; fed by an agent with its workers' events, they are the whole
 * agent's, so a channel with members on two workers is occupied once and vacated once.
 * Its maps hold only live sessions and channels with members.
 *
 * Order of what one action causes: `channel_occupied` before `member_added`,
 * `member_removed` before `channel_vacated`, a session's channel events before its
 * `session_closed`.
 */
export class WebhookTracker {
  private readonly sessions = new Map<string, Entry>();
  private readonly counts = new Map<string, number>();
  /** Events in the order they happened, held while an earlier one waits for its decision. */
  private readonly steps: Step[] = [];
  private idlers: Array<() => void> = [];
  private lastDropLog = 0;
  /** Events dropped because too many waited for a decision. */
  dropped = 0;

  /**
   * `emit` gets each event; `wanted` says which names anybody listens to (the rest are not
   * made); `decider`, with several nodes, decides the channel events on the cluster's
   * counts (without it this tracker's counts decide).
   */
  constructor(
    private readonly emit: (e: WebhookEvent) => void,
    private readonly wanted: ReadonlySet<WebhookEventName>,
    private readonly decider: ChannelDecider | null = null,
    private readonly logger: DurableLogger | null = null,
    private readonly maxWaiting = MAX_WAITING_EVENTS
  ) {}

  /** Events waiting behind a decision (bounded by how long the deciding store takes to answer). */
  get waiting(): number {
    return this.steps.length;
  }

  /** Resolves once no event waits for a decision. */
  idle(): Promise<void> {
    if (this.steps.length === 0) return Promise.resolve();
    return new Promise((done) => this.idlers.push(done));
  }

  /** The channels another node's death emptied: vacated, from here (no session caused it). */
  vacatedElsewhere(channels: readonly string[]): void {
    if (!this.wanted.has('channel_vacated')) return;
    for (const channel of channels) this.push({ id: newId(), name: 'channel_vacated', channel, session: null, user: null, time_ms: Date.now() }, true);
  }

  /** Channels with members now (for tests and figures). */
  get channelCount(): number {
    return this.counts.size;
  }

  /** The channels with members now. */
  channels(): IterableIterator<string> {
    return this.counts.keys();
  }

  sessionOpened(s: TrackedSession): void {
    if (this.sessions.has(s.id)) return;
    this.sessions.set(s.id, { user: s.userId, channels: new Set() });
    this.event('session_opened', null, s.id, s.userId);
  }

  /** A session ended (closed, or lost with its worker): it leaves every channel it was in. */
  sessionClosed(s: { readonly id: string }): void {
    const e = this.sessions.get(s.id);
    if (e === undefined) return;
    for (const channel of e.channels) this.left(s.id, e.user, channel);
    this.sessions.delete(s.id);
    this.event('session_closed', null, s.id, e.user);
  }

  subscribed(s: { readonly id: string }, channel: string): void {
    const e = this.sessions.get(s.id);
    if (e === undefined || e.channels.has(channel)) return;
    e.channels.add(channel);
    const n = (this.counts.get(channel) ?? 0) + 1;
    this.counts.set(channel, n);
    if (n === 1) this.event('channel_occupied', channel, s.id, e.user);
    if (channel.startsWith(PRIVATE_PREFIX)) this.event('member_added', channel, s.id, e.user);
  }

  unsubscribed(s: { readonly id: string }, channel: string): void {
    const e = this.sessions.get(s.id);
    if (e === undefined || !e.channels.delete(channel)) return;
    this.left(s.id, e.user, channel);
  }

  private left(session: string, user: string | null, channel: string): void {
    if (channel.startsWith(PRIVATE_PREFIX)) this.event('member_removed', channel, session, user);
    const n = (this.counts.get(channel) ?? 1) - 1;
    if (n > 0) {
      this.counts.set(channel, n);
      return;
    }
    this.counts.delete(channel);
    this.event('channel_vacated', channel, session, user);
  }

  private event(name: WebhookEventName, channel: string | null, session: string, user: string | null): void {
    const event: WebhookEvent = { id: newId(), name, channel, session, user, time_ms: Date.now() };
    const wanted = this.wanted.has(name);
    const channelEvent = name === 'channel_occupied' || name === 'channel_vacated';
    if (!channelEvent || this.decider === null || channel === null) {
      if (wanted) this.push(event, true);
      return;
    }
    // The cluster's sets must follow every 0 → 1 and 1 → 0 as soon as either channel event is wanted.
    if (!this.wanted.has('channel_occupied') && !this.wanted.has('channel_vacated')) return;
    if (this.full()) return;
    const step: Step = { event, send: null };
    this.steps.push(step);
    const decision = name === 'channel_occupied' ? this.decider.joined(channel) : this.decider.left(channel);
    void decision.then(
      (send) => this.decided(step, send && wanted),
      () => this.decided(step, false)
    );
  }

  private push(event: WebhookEvent, send: boolean): void {
    if (this.steps.length === 0) {
      if (send) this.emit(event);
      return;
    }
    if (this.full()) return;
    this.steps.push({ event, send });
  }

  /** Whether the events waiting for a decision reached the bound (the new one is dropped, counted, logged). */
  private full(): boolean {
    if (this.steps.length < this.maxWaiting) return false;
    this.dropped++;
    const now = Date.now();
    if (now - this.lastDropLog >= DROP_LOG_MS) {
      this.lastDropLog = now;
      this.logger?.error({ waiting: this.steps.length, dropped: this.dropped }, 'webhooks: too many events wait for Redis to decide; event dropped');
    }
    return true;
  }

  private decided(step: Step, send: boolean): void {
    step.send = send;
    while (this.steps.length > 0 && this.steps[0]!.send !== null) {
      const s = this.steps.shift()!;
      if (s.send) this.emit(s.event);
    }
    if (this.steps.length === 0 && this.idlers.length > 0) {
      const idlers = this.idlers;
      this.idlers = [];
      for (const done of idlers) done();
    }
  }
}
