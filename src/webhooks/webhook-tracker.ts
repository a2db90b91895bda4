import { PRIVATE_PREFIX } from '../protocol/frames.js';
import { newId } from '../protocol/ids.js';
import type { WebhookEventName } from '../config/webhook-targets.js';
import type { WebhookEvent } from './webhook-event.js';

/** What the tracker is told of a session: the hub's member and the agent's session info both fit. */
export interface TrackedSession {
  readonly id: string;
  readonly userId: string | null;
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

  /** `emit` gets each event; `wanted` says which names anybody listens to (the rest are not made). */
  constructor(
    private readonly emit: (e: WebhookEvent) => void,
    private readonly wanted: ReadonlySet<WebhookEventName>
  ) {}

  /** Channels with members now (for tests and figures). */
  get channelCount(): number {
    return this.counts.size;
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
    if (!this.wanted.has(name)) return;
    this.emit({ id: newId(), name, channel, session, user, time_ms: Date.now() });
  }
}
