import type { MetricJson } from '../metrics/node-metrics.js';
import { mergeScrapes, type ScrapePart } from '../metrics/merge-scrapes.js';
import { Registry } from 'prom-client';
import { addProcessMetrics } from '../metrics/process-metrics.js';
import type { Scrape } from '../metrics/metrics-http.js';
import type { WorkerHandle } from './worker-handle.js';

/** How long the agent waits for each worker's metrics before leaving it out (`zenconn_worker_scrape_up 0`). */
export const WORKER_SCRAPE_TIMEOUT_MS = 1000;

/**
 * An agent's Prometheus scrape across its workers: it asks every worker for its metrics
 * (`metrics-ask` over IPC, answered with `metrics`: the worker's registry as JSON), waits
 * at most WORKER_SCRAPE_TIMEOUT_MS for each, and merges the answers with a `worker` label
 * (the slot; `agent` for the agent process's own: process and webhook metrics). A worker that does not
 * answer in time is left out and shows as `zenconn_worker_scrape_up{worker="…"} 0`.
 */
export class AgentMetrics {
  /** The agent process's own metrics (`worker="agent"`): its process metrics, from the first scrape on, and what the agent adds (its webhooks). */
  readonly own = new Registry();
  private withProcess = false;
  private nextId = 1;
  private readonly pending = new Map<number, (metrics: MetricJson[]) => void>();

  constructor(
    private readonly workers: () => WorkerHandle[],
    private readonly timeoutMs = WORKER_SCRAPE_TIMEOUT_MS
  ) {}

  /** The exposition of the whole agent. */
  async scrape(): Promise<Scrape> {
    // During a rolling restart a slot has an old (draining) and a new worker: the new one speaks for it.
    const bySlot = new Map<number, WorkerHandle>();
    for (const h of this.workers()) {
      if (h.exited) continue;
      const seen = bySlot.get(h.slot);
      if (seen === undefined || seen.state === 'draining') bySlot.set(h.slot, h);
    }
    const handles = [...bySlot.values()].sort((a, b) => a.slot - b.slot);
    const parts: ScrapePart[] = await Promise.all(handles.map(async (h) => ({ worker: String(h.slot), metrics: await this.ask(h) })));
    if (!this.withProcess) {
      addProcessMetrics(this.own);
      this.withProcess = true;
    }
    parts.push({ worker: 'agent', metrics: await this.own.getMetricsAsJSON() });
    return mergeScrapes(parts);
  }

  /** A worker's answer to `metrics-ask`. */
  answered(id: number, metrics: MetricJson[]): void {
    this.pending.get(id)?.(metrics);
  }

  /** Asks one worker; null when it did not answer within the timeout. */
  private ask(h: WorkerHandle): Promise<MetricJson[] | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, this.timeoutMs);
      this.pending.set(id, (metrics) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(metrics);
      });
      h.push({ t: 'metrics-ask', id });
    });
  }
}
