import { join } from 'node:path';
import type { Config } from '../config/options.js';
import { parseWebhookTargets, type WebhookEventName } from '../config/webhook-targets.js';
import type { DurableLogger } from '../store/durable/retry-policy.js';
import type { WebhookEvent } from './webhook-event.js';
import { WebhookQueue } from './webhook-queue.js';
import { WebhookTracker, type TrackedSession } from './webhook-tracker.js';
import { WebhookElection } from './webhook-election.js';

/** Longest an event waits for others to share its POST. */
export const WEBHOOK_BATCH_MS = 100;
/** First retry delay of a failed POST (it doubles up to `--webhook-retry-max-ms`). */
export const WEBHOOK_RETRY_MIN_MS = 100;

/**
 * The membership events the webhooks listen to: the shape of the hub's observer, so a
 * `serve` node hands it to its hub, and the agent calls it with its workers' events.
 */
export interface WebhookObserver {
  sessionOpened(session: TrackedSession): void;
  sessionClosed(session: { readonly id: string }, code?: number): void;
  subscribed(session: { readonly id: string }, channel: string): void;
  unsubscribed(session: { readonly id: string }, channel: string): void;
}

/**
 * The webhooks of one sending process (a `serve` node, or an agent for all its workers):
 * a {@link WebhookTracker} that turns membership into events, and one durable
 * {@link WebhookQueue} per `--webhook` URL, under `<spool-dir>/webhooks/`.
 */
export class Webhooks {
  readonly queues: WebhookQueue[];
  readonly tracker: WebhookTracker;
  /** With `--bus`: who sends each channel event, decided on the whole cluster's counts. */
  private readonly election: WebhookElection | null;

  /** `nodeId`: the sending process's server id (its name in Redis with `--bus`). */
  constructor(config: Readonly<Config>, nodeId: string, logger?: DurableLogger) {
    // The config was validated at load: this does not throw.
    const targets = parseWebhookTargets(config.webhook, config.webhookEvents);
    const dir = join(config.spoolDir, 'webhooks');
    this.queues = targets.map(
      (target) =>
        new WebhookQueue({
          dir,
          target,
          secret: config.webhookSecret,
          batchMax: config.webhookBatchMax,
          batchMs: WEBHOOK_BATCH_MS,
          timeoutMs: config.webhookTimeoutMs,
          retryMinMs: Math.min(WEBHOOK_RETRY_MIN_MS, config.webhookRetryMaxMs),
          retryMaxMs: config.webhookRetryMaxMs,
          maxBytes: config.webhookMaxQueueBytes,
          logger
        })
    );
    const wanted = new Set<WebhookEventName>();
    for (const t of targets) for (const n of t.events) wanted.add(n);
    const routes = targets.map((t, i) => ({ events: t.events, queue: this.queues[i]! }));
    this.election = config.bus === null ? null : new WebhookElection({ url: config.bus, prefix: config.busPrefix, nodeId, logger });
    this.tracker = new WebhookTracker(
      (e: WebhookEvent) => {
        for (const r of routes) if (r.events.has(e.name)) r.queue.push(e);
      },
      wanted,
      this.election,
      logger ?? null
    );
  }

  /** Whether `--webhook` names any receiver. */
  static enabled(config: Readonly<Config>): boolean {
    return config.webhook.length > 0;
  }

  /** The tracker, as an observer of sessions and subscriptions. */
  get observer(): WebhookObserver {
    const t = this.tracker;
    return {
      sessionOpened: (s) => t.sessionOpened(s),
      sessionClosed: (s) => t.sessionClosed(s),
      subscribed: (s, channel) => t.subscribed(s, channel),
      unsubscribed: (s, channel) => t.unsubscribed(s, channel)
    };
  }

  /** Claims what a previous run left unsent and starts sending. */
  start(): void {
    for (const q of this.queues) q.start();
    this.election?.start(
      (channels) => this.tracker.vacatedElsewhere(channels),
      () => [...this.tracker.channels()]
    );
  }

  /** Resolves true once every queued event is delivered (false after `timeoutMs`). */
  async flush(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const decided = await Promise.race([
      this.tracker.idle().then(() => true),
      new Promise<boolean>((done) => (timer = setTimeout(() => done(false), timeoutMs)))
    ]);
    clearTimeout(timer);
    if (!decided) return false;
    timeoutMs = Math.max(0, until - Date.now());
    const done = await Promise.all(this.queues.map((q) => q.flush(timeoutMs)));
    return done.every(Boolean);
  }

  /** Stops sending; the unsent events stay on disk for the next start. */
  async close(): Promise<void> {
    await this.election?.close();
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
