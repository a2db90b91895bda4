import { Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { SessionManager } from '../session/session-manager.js';
import type { Session } from '../session/session.js';
import type { Hub } from '../channels/hub.js';
import type { AuditSink } from '../audit/audit-sink.js';
import type { Bus } from '../bus/bus.js';
import type { AuthFailures } from '../auth/auth-failures.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import { addProcessMetrics } from './process-metrics.js';
import { addWebhookMetrics } from './webhook-metrics.js';
import { addAuditMetrics } from './audit-metrics.js';
import { counterAtScrape, gaugeAtScrape } from './read-at-scrape.js';

/** What a node's metrics are read from: plain counters and sizes, read only when scraped. */
export interface NodeMetricsSources {
  sessions: SessionManager;
  hub: Hub<Session>;
  audit: AuditSink;
  bus: Bus;
  authFailures: AuthFailures;
  /** The webhooks this process sends (`--webhook`, not on an agent's worker), or null. */
  webhooks?: Webhooks | null;
}

/** A metric's JSON form (`Registry.getMetricsAsJSON`), what a worker sends its agent. */
export type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/**
 * The Prometheus metrics of one node (a `serve` process, a worker, or an agent with
 * `--workers 0`), in a registry of its own (several nodes may share a process in tests).
 * Nothing here runs on the message path: every `zenconn_*` figure is a `collect`
 * callback that reads the session manager's, hub's and audit writer's counters when
 * scraped; the open sessions' bytes are summed then (O(sessions) per scrape). The one
 * exception is the audit commit histogram, observed once per group commit. prom-client's
 * default process metrics (CPU, memory, handles, GC, event-loop lag) are in it too from
 * the first scrape on, shared with the other nodes of the process (process-metrics.ts).
 */
export class NodeMetrics {
  readonly registry = new Registry();

  constructor(src: NodeMetricsSources) {
    const r = this.registry;
    const { sessions, hub, audit, bus, authFailures, webhooks } = src;
    const c = sessions.counters;
    // One pass over the open sessions per scrape, shared by the gauge and the byte counters.
    // prom-client calls every `collect` synchronously in one turn, so the pass is dropped
    // at the turn's end (a microtask): exact for this scrape, and no session can close in
    // between to be counted twice (a counter must never go down).
    let pass: { json: number; bin: number; bytesIn: number; bytesOut: number } | null = null;
    const open = (): { json: number; bin: number; bytesIn: number; bytesOut: number } => {
      if (pass !== null) return pass;
      const p = { json: 0, bin: 0, bytesIn: 0, bytesOut: 0 };
      for (const s of hub.sessions.values()) {
        if (s.protocol === 'bin') p.bin++;
        else p.json++;
        p.bytesIn += s.bytesIn;
        p.bytesOut += s.bytesOut;
      }
      pass = p;
      queueMicrotask(() => (pass = null));
      return p;
    };
    new Gauge({
      name: 'zenconn_sessions',
      help: 'Open sessions, by protocol.',
      labelNames: ['protocol'],
      registers: [r],
      collect() {
        const p = open();
        this.set({ protocol: 'json' }, p.json);
        this.set({ protocol: 'bin' }, p.bin);
      }
    });
    counterAtScrape(r, 'zenconn_sessions_opened_total', 'Sessions opened since start.', [], (set) => set({}, c.opened));
    counterAtScrape(r, 'zenconn_sessions_closed_total', 'Sessions closed since start, by close code.', ['code'], (set) => {
      for (const [code, n] of c.closed) set({ code: String(code) }, n);
    });
    counterAtScrape(r, 'zenconn_messages_received_total', 'Frames received from sessions and admitted by the rate limit, by type (invalid: did not decode).', ['type'], (set) => {
      for (const [type, n] of Object.entries(c.received)) set({ type }, n);
    });
    counterAtScrape(r, 'zenconn_deliveries_total', 'Frames fanned out to members (events and joined/left notices), one per recipient.', [], (set) => set({}, hub.delivered));
    counterAtScrape(r, 'zenconn_bytes_sent_total', 'WebSocket bytes written to sessions.', [], (set) => set({}, c.closedBytesOut + open().bytesOut));
    counterAtScrape(r, 'zenconn_bytes_received_total', 'WebSocket payload bytes received from sessions.', [], (set) => set({}, c.closedBytesIn + open().bytesIn));
    counterAtScrape(r, 'zenconn_slow_consumer_closes_total', 'Sessions closed with 1013 because their outbound buffer was over --max-buffered-bytes.', [], (set) => set({}, c.slowConsumerCloses));
    counterAtScrape(r, 'zenconn_auth_failures_total', 'Upgrades, refresh frames and API requests refused for their token or grant, by reason (missing, invalid, expired, forbidden).', ['reason'], (set) => {
      for (const [reason, n] of Object.entries(authFailures.counts)) set({ reason }, n);
    });
    counterAtScrape(r, 'zenconn_rate_limited_total', 'Inbound frames refused by the per-session rate limit.', [], (set) => set({}, c.rateLimited));
    gauge(r, 'zenconn_channels', 'Channels with at least one member in this process.', () => hub.channels.size);
    addAuditMetrics(r, audit);
    gauge(r, 'zenconn_bus_up', 'Whether the bus to the other processes can deliver (1) or not (0).', () => (bus.ready ? 1 : 0));
    if (webhooks) addWebhookMetrics(r, webhooks);
  }

  private withProcess = false;

  /**
   * The registry, with the process metrics from the first scrape on: their monitors (an
   * event-loop delay histogram, a GC observer) start only once somebody scrapes.
   */
  private scraped(): Registry {
    if (!this.withProcess) {
      addProcessMetrics(this.registry);
      this.withProcess = true;
    }
    return this.registry;
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.scraped().metrics();
  }

  /** The metrics as JSON (what a worker sends its agent). */
  json(): Promise<MetricJson[]> {
    return this.scraped().getMetricsAsJSON();
  }

  /** Content-Type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A gauge without labels read at scrape time. */
function gauge(r: Registry, name: string, help: string, read: () => number): void {
  gaugeAtScrape(r, name, help, [], (set) => set({}, read()));
}
