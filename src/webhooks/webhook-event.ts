import type { JournalCodec } from '../store/durable/journal-file.js';
import { isWebhookEventName, type WebhookEventName } from '../config/webhook-targets.js';

/**
 * One event as it is queued and posted. `id` is its idempotency key (a UUID v7, so it
 * also sorts by time); `session` and `user` are those of the session whose action caused
 * it; `channel` is null for the session events.
 */
export interface WebhookEvent {
  id: string;
  name: WebhookEventName;
  channel: string | null;
  /** Null for a `channel_vacated` that a dead node's removal caused (see webhook-election.ts). */
  session: string | null;
  user: string | null;
  /** When it happened, epoch ms. */
  time_ms: number;
}

function isEventName(v: unknown): v is WebhookEventName {
  return typeof v === 'string' && isWebhookEventName(v);
}

/** One event per ndjson line, in the shape it is posted. */
export const webhookEventCodec: JournalCodec<WebhookEvent> = {
  encode: (e) => JSON.stringify({ id: e.id, name: e.name, channel: e.channel, session: e.session, user: e.user, time_ms: e.time_ms }) + '\n',
  decode: (line) => {
    const o: unknown = JSON.parse(line);
    if (typeof o !== 'object' || o === null) throw new Error('webhook journal line is not an object');
    const r = o as Record<string, unknown>;
    if (typeof r.id !== 'string' || !isEventName(r.name) || !(r.session === null || typeof r.session === 'string') || typeof r.time_ms !== 'number') {
      throw new Error('bad webhook journal line');
    }
    if (!(r.channel === null || typeof r.channel === 'string') || !(r.user === null || typeof r.user === 'string')) {
      throw new Error('bad webhook journal line');
    }
    return { id: r.id, name: r.name, channel: r.channel, session: r.session, user: r.user, time_ms: r.time_ms };
  }
};
