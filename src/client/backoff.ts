/**
 * Reconnect delays: "full jitter" exponential backoff (AWS architecture blog, "Exponential
 * Backoff And Jitter"): attempt n waits a uniformly random time in [0, min(cap, base·2^n)).
 * The randomness spreads a crowd of clients that lost the same server, so they do not
 * all come back in the same millisecond.
 */

/** Backoff settings; every field has a default. */
export interface BackoffOptions {
  /** The ceiling of the first retry's delay, in ms. Default 500. */
  baseMs?: number;
  /** The largest ceiling, in ms. Default 30000. */
  capMs?: number;
  /** A connection that stays up this long (ms) resets the attempt count. Default 10000. */
  stableMs?: number;
}

export const BACKOFF_DEFAULTS: Readonly<Required<BackoffOptions>> = Object.freeze({ baseMs: 500, capMs: 30_000, stableMs: 10_000 });

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry), in ms:
 * `random() · min(capMs, baseMs · 2^attempt)`. `random` is injectable for tests.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? BACKOFF_DEFAULTS.baseMs;
  const cap = options.capMs ?? BACKOFF_DEFAULTS.capMs;
  // 2^attempt overflows to Infinity past ~1023, and min() takes care of it.
  const ceiling = Math.min(cap, base * Math.pow(2, attempt));
  return Math.floor(random() * ceiling);
}
