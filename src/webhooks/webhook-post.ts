import { SIGNATURE_HEADER, signWebhook } from './webhook-signature.js';
import type { WebhookEvent } from './webhook-event.js';

/** Why a POST did not count as delivered. */
export class WebhookPostError extends Error {
  constructor(
    message: string,
    /** The HTTP status, when the receiver answered. */
    readonly status: number | null
  ) {
    super(message);
    this.name = 'WebhookPostError';
  }
}

/** The body of one POST: `{"time_ms":…,"events":[…]}` (Pusher's shape, with an `id` per event). */
export function webhookBody(events: readonly WebhookEvent[], now = Date.now()): string {
  return JSON.stringify({ time_ms: now, events });
}

/**
 * POSTs one batch. Resolves on a 2xx answer (its body read and dropped); rejects with a
 * {@link WebhookPostError} on another status, a network error, or no full answer within
 * `timeoutMs`. `signal` aborts it (the queue closing).
 */
export async function postWebhook(
  url: string,
  events: readonly WebhookEvent[],
  o: { secret: string | null; timeoutMs: number; signal: AbortSignal }
): Promise<void> {
  const body = webhookBody(events);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'zenconn-webhooks' };
  if (o.secret !== null) headers[SIGNATURE_HEADER] = signWebhook(o.secret, body, Math.floor(Date.now() / 1000));
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = AbortSignal.any([timeout, o.signal]);
  let status: number;
  try {
    const res = await fetch(url, { method: 'POST', headers, body, signal, redirect: 'manual' });
    status = res.status;
    await res.arrayBuffer();
  } catch (err) {
    if (timeout.aborted) throw new WebhookPostError(`no answer within ${o.timeoutMs} ms`, null);
    throw new WebhookPostError((err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message, null);
  }
  if (status < 200 || status > 299) throw new WebhookPostError(`answered ${status}`, status);
}
