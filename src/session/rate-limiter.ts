/**
 * A token bucket: `perSec` tokens a second up to `burst`. Cheap enough to run on every
 * inbound message (one clock read, no timers).
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  /** Messages refused since the last one let through. */
  rejectedInRow = 0;

  constructor(
    private readonly perSec: number,
    private readonly burst: number
  ) {
    this.tokens = burst;
    this.last = performance.now();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSec) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.rejectedInRow = 0;
      return true;
    }
    this.rejectedInRow++;
    return false;
  }
}
