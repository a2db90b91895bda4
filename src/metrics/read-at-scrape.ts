import { Counter, Gauge, type Registry } from 'prom-client';

/** A series' labels. */
export type Labels = Record<string, string>;

/** Called at scrape time with `set(labels, value)` for each series of a metric. */
export type ReadSeries = (set: (labels: Labels, value: number) => void) => void;

/** A counter whose totals are read when scraped (the process keeps them as plain fields). */
export function counterAtScrape(r: Registry, name: string, help: string, labelNames: string[], read: ReadSeries): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [r],
    collect() {
      this.reset();
      read((labels, value) => this.inc(labels, value));
    }
  });
}

/** A gauge read when scraped. */
export function gaugeAtScrape(r: Registry, name: string, help: string, labelNames: string[], read: ReadSeries): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [r],
    collect() {
      this.reset();
      read((labels, value) => this.set(labels, value));
    }
  });
}
