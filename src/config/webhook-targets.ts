import { maskUrl } from '../log.js';

/** Every event name a webhook can carry (`--webhook-events`). */
export const WEBHOOK_EVENT_NAMES = [
  'channel_occupied',
  'channel_vacated',
  'member_added',
  'member_removed',
  'session_opened',
  'session_closed'
] as const;

/** One event name. */
export type WebhookEventName = (typeof WEBHOOK_EVENT_NAMES)[number];

/** What `--webhook-events` is when not given: the channel and member events, not the session ones. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEventName[] = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'];

/** Whether `name` is an event name. */
export function isWebhookEventName(name: string): name is WebhookEventName {
  return (WEBHOOK_EVENT_NAMES as readonly string[]).includes(name);
}

/** One receiver and the events it gets. */
export interface WebhookTarget {
  /** The URL POSTed to, without the `#events` suffix. */
  url: string;
  events: ReadonlySet<WebhookEventName>;
}

/**
 * Reads `--webhook` and `--webhook-events`: each URL (http or https) gets the events of
 * `--webhook-events`, unless it ends with `#name+name…`, which chooses its own
 * (`https://a.example/hook#member_added+member_removed`). Throws an Error naming the
 * fault (the caller adds the option's name).
 */
export function parseWebhookTargets(urls: readonly string[], events: readonly string[]): WebhookTarget[] {
  const names = (list: readonly string[], where: string): Set<WebhookEventName> => {
    const out = new Set<WebhookEventName>();
    for (const n of list) {
      if (!isWebhookEventName(n)) throw new Error(`unknown webhook event "${n}"${where} (expected ${WEBHOOK_EVENT_NAMES.join(', ')})`);
      out.add(n);
    }
    return out;
  };
  const all = names(events, '');
  const seen = new Set<string>();
  return urls.map((raw) => {
    const hash = raw.indexOf('#');
    const base = hash === -1 ? raw : raw.slice(0, hash);
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw new Error(`"${base}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`"${maskUrl(base)}": expected an http:// or https:// URL`);
    if (seen.has(url.href)) throw new Error(`"${maskUrl(base)}" is given twice`);
    seen.add(url.href);
    const own = hash === -1 ? all : names(raw.slice(hash + 1).split('+').filter((s) => s !== ''), ` in "${maskUrl(raw)}"`);
    if (own.size === 0) throw new Error(`"${maskUrl(raw)}": no events chosen`);
    return { url: url.href, events: own };
  });
}
