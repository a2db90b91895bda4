import { AggregatorRegistry, Gauge, type PrometheusContentType, type Registry } from 'prom-client';
import type { MetricJson } from './node-metrics.js';

/** One process's part of an agent's scrape: its `worker` label and its metrics, or null when it did not answer in time. */
export interface ScrapePart {
  worker: string;
  metrics: MetricJson[] | null;
}

/**
 * One exposition for an agent from its processes' metrics: every series gets a
 * `worker` label (a process's own label set is kept), so no two processes' series
 * collide and nothing is summed away; `zenconn_worker_scrape_up{worker}` is 1 for each
 * part that answered and 0 for each that did not (its series are left out).
 */
export async function mergeScrapes(parts: readonly ScrapePart[]): Promise<{ contentType: string; body: string }> {
  const relabelled: MetricJson[][] = [];
  for (const part of parts) {
    if (part.metrics === null) continue;
    relabelled.push(
      part.metrics.map((m) => ({
        ...m,
        // Label sets are distinct per process now: summing merges them without adding anything up.
        aggregator: 'sum',
        values: m.values.map((v) => ({ ...v, labels: { ...v.labels, worker: part.worker } }))
      }))
    );
  }
  const registry: Registry<PrometheusContentType> = AggregatorRegistry.aggregate<PrometheusContentType>(relabelled);
  const up = new Gauge({ name: 'zenconn_worker_scrape_up', help: 'Whether the process answered this scrape within 1 s (1) or not (0, its series are left out).', labelNames: ['worker'], registers: [registry] });
  for (const part of parts) up.set({ worker: part.worker }, part.metrics === null ? 0 : 1);
  return { contentType: registry.contentType, body: await registry.metrics() };
}
