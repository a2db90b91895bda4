/**
 * Rates from polled counters: the server gives counters that only grow (messages in and
 * out, sessions opened and closed since start); the page keeps the last minutes of
 * samples and turns two neighbours into a per-second rate. A counter that went down (the
 * process restarted) gives no rate for that step rather than a negative one.
 */

/** Keeps timestamped counter samples for `windowMs`. */
export class CounterHistory {
  /** @param {number} windowMs how much history to keep, ms */
  constructor(windowMs) {
    this.windowMs = windowMs;
    /** @type {Array<{at: number, values: Record<string, number>}>} */
    this.samples = [];
  }

  /** Adds a sample taken at `at` (epoch ms); older samples than the window fall off. */
  add(at, values) {
    const last = this.samples[this.samples.length - 1];
    if (last !== undefined && at <= last.at) return;
    this.samples.push({ at, values: { ...values } });
    const oldest = at - this.windowMs;
    while (this.samples.length > 0 && this.samples[0].at < oldest) this.samples.shift();
  }

  /**
   * The per-second rate of counter `name` between each pair of neighbouring samples, at
   * the later one's time: `[{at, value}]`.
   */
  rates(name) {
    const out = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1];
      const b = this.samples[i];
      const d = b.values[name] - a.values[name];
      const secs = (b.at - a.at) / 1000;
      if (!(secs > 0) || !(d >= 0)) continue;
      out.push({ at: b.at, value: d / secs });
    }
    return out;
  }

  /** The values of gauge `name` as sampled: `[{at, value}]`. */
  series(name) {
    return this.samples.filter((s) => typeof s.values[name] === 'number').map((s) => ({ at: s.at, value: s.values[name] }));
  }

  /** The latest rate of `name`, or null before two samples. */
  lastRate(name) {
    const r = this.rates(name);
    return r.length === 0 ? null : r[r.length - 1].value;
  }
}
