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
   * The per-second rate of counter `name` at each sample, over the `spanMs` before it
   * (at least the previous sample): `[{at, value}]`. A span of a few seconds smooths the
   * steps of counters that the server refreshes about as often as the page polls.
   */
  rates(name, spanMs = 0) {
    const out = [];
    let j = 0;
    for (let i = 1; i < this.samples.length; i++) {
      const b = this.samples[i];
      while (j < i - 1 && this.samples[j + 1].at <= b.at - spanMs) j++;
      // A restart between j and i (a counter that went down) makes the span start after it.
      for (let k = j + 1; k < i; k++) if (this.samples[k].values[name] < this.samples[k - 1].values[name]) j = k;
      const a = this.samples[j];
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

  /** The latest rate of `name` (over `spanMs`, see `rates`), or null before two samples. */
  lastRate(name, spanMs = 0) {
    const r = this.rates(name, spanMs);
    return r.length === 0 ? null : r[r.length - 1].value;
  }
}
