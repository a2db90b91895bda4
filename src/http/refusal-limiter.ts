/**
 * How many refused attempts are written to the audit trail per client address: a token
 * bucket per address (`perMinute` tokens, refilled evenly over a minute), in a map of at
 * most `maxAddresses` entries where the least recently seen address is forgotten first.
 * What is not written is counted, and the next row written for that address says how many.
 */
export class RefusalLimiter {
  /** Address → its bucket; Map order is the LRU order (a hit is moved to the end). */
  private readonly buckets = new Map<string, { tokens: number; at: number; suppressed: number }>();
  /** Suppressed counts of addresses forgotten by the LRU, carried by the next row written. */
  private forgotten = 0;

  constructor(
    private readonly perMinute: number,
    private readonly maxAddresses: number,
    private readonly now: () => number = () => performance.now()
  ) {}

  /** Addresses tracked now (at most `maxAddresses`). */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * One refused attempt from `address`: null when it is not to be written (counted), else
   * what the row carries: attempts not written since the last row for this address, and
   * those of forgotten addresses.
   */
  admit(address: string): { suppressed: number; forgotten: number } | null {
    const t = this.now();
    let b = this.buckets.get(address);
    if (b === undefined) {
      if (this.buckets.size >= this.maxAddresses) {
        const oldest = this.buckets.entries().next().value;
        if (oldest !== undefined) {
          this.buckets.delete(oldest[0]);
          this.forgotten += oldest[1].suppressed;
        }
      }
      b = { tokens: this.perMinute, at: t, suppressed: 0 };
    } else {
      this.buckets.delete(address);
      b.tokens = Math.min(this.perMinute, b.tokens + ((t - b.at) * this.perMinute) / 60_000);
      b.at = t;
    }
    this.buckets.set(address, b);
    if (b.tokens < 1) {
      b.suppressed++;
      return null;
    }
    b.tokens -= 1;
    const out = { suppressed: b.suppressed, forgotten: this.forgotten };
    b.suppressed = 0;
    this.forgotten = 0;
    return out;
  }
}
