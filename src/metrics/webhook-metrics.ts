import type { Registry } from 'prom-client';
import { maskUrl } from '../log.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import type { WebhookQueue } from '../webhooks/webhook-queue.js';
import { counterAtScrape, gaugeAtScrape, type ReadSeries } from './read-at-scrape.js';

/**
 * The webhook figures of the process that sends them (a `serve` node, or an agent for its
 * workers), by receiver (`url`, a password in it masked): read from the queues' plain
 * fields when scraped.
 */
export function addWebhookMetrics(r: Registry, webhooks: Webhooks): void {
  const byUrl =
    (read: (q: WebhookQueue) => number): ReadSeries =>
    (set) => {
      for (const q of webhooks.queues) set({ url: maskUrl(q.url) }, read(q));
    };
  counterAtScrape(r, 'zenconn_webhook_events_delivered_total', 'Webhook events POSTed and answered with a 2xx, by receiver.', ['url'], byUrl((q) => q.delivered));
  counterAtScrape(r, 'zenconn_webhook_post_failures_total', 'Webhook POSTs that failed (error, timeout or non-2xx answer) and are retried, by receiver.', ['url'], byUrl((q) => q.failures));
  counterAtScrape(r, 'zenconn_webhook_events_dropped_total', 'Webhook events dropped: the queue was past --webhook-max-queue-bytes or could not be written, by receiver.', ['url'], byUrl((q) => q.dropped));
  gaugeAtScrape(r, 'zenconn_webhook_queue_bytes', 'Bytes in the webhook queue files of a receiver (events not yet delivered, and those of a file still being sent).', ['url'], byUrl((q) => q.bytes));
}
