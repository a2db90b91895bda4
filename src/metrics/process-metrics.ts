import { Registry, collectDefaultMetrics } from 'prom-client';

let shared: Registry | null = null;

/**
 * prom-client's default metrics (CPU, memory, heap, GC, handles, event-loop lag) of this
 * process, collected once per process whatever the number of nodes in it (tests run
 * several): their monitors (an event-loop delay histogram, a GC observer) are started
 * once and never stopped, like the process they describe. Each node's registry registers
 * these same metric objects.
 */
export function processMetrics(): Registry {
  if (shared === null) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}

/** Registers the process's default metrics in `registry` as well. */
export function addProcessMetrics(registry: Registry): void {
  const shared = processMetrics();
  for (const { name } of shared.getMetricsAsArray()) {
    const metric = shared.getSingleMetric(name);
    if (metric !== undefined) registry.registerMetric(metric);
  }
}
