/**
 * Deadlines of many keys behind ONE timer: an indexed binary min-heap (a key sits in it at
 * most once and is removed in O(log n)) and a timer armed for the earliest deadline. The
 * session manager keeps every session's token expiry here, so tens of thousands of
 * sessions cost one timer, and a closed session leaves the heap at once.
 */

/** setTimeout's largest delay (about 24.8 days); a later deadline is re-armed on the way. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class ExpirySchedule<K> {
  private readonly heap: Array<{ key: K; at: number }> = [];
  private readonly index = new Map<K, number>();
  private timer: NodeJS.Timeout | null = null;
  /** When the armed timer fires (epoch ms); Infinity when none is armed. */
  private armedAt = Infinity;
  private stopped = false;

  /** `onExpire` gets each key whose deadline passed, once, after it left the schedule. */
  constructor(
    private readonly onExpire: (key: K) => void,
    private readonly now: () => number = Date.now
  ) {}

  /** Keys scheduled. */
  get size(): number {
    return this.heap.length;
  }

  /** Sets (or moves) `key`'s deadline, in epoch ms. */
  set(key: K, at: number): void {
    const i = this.index.get(key);
    if (i === undefined) {
      this.heap.push({ key, at });
      this.index.set(key, this.heap.length - 1);
      this.up(this.heap.length - 1);
    } else {
      const old = this.heap[i]!.at;
      this.heap[i]!.at = at;
      if (at < old) this.up(i);
      else this.down(i);
    }
    this.arm();
  }

  /** Takes `key` out (no-op when absent). The timer is left as it is: firing early only re-arms it. */
  delete(key: K): void {
    const i = this.index.get(key);
    if (i === undefined) return;
    this.removeAt(i);
  }

  /** Clears the timer for good (shutdown); the heap is kept but nothing fires. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = Infinity;
  }

  private arm(): void {
    if (this.stopped) return;
    const head = this.heap[0];
    if (head === undefined || (this.timer !== null && this.armedAt <= head.at)) return;
    if (this.timer !== null) clearTimeout(this.timer);
    const delay = Math.min(Math.max(0, head.at - this.now()), MAX_DELAY_MS);
    this.armedAt = this.now() + delay;
    this.timer = setTimeout(() => this.fire(), delay);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    this.armedAt = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const { key } = this.heap[0]!;
      this.removeAt(0);
      this.onExpire(key);
    }
    this.arm();
  }

  private removeAt(i: number): void {
    const last = this.heap.pop()!;
    this.index.delete(this.heap.length === i ? last.key : this.heap[i]!.key);
    if (i === this.heap.length) return;
    this.heap[i] = last;
    this.index.set(last.key, i);
    this.up(i);
    this.down(i);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.at < h[m]!.at) m = l;
      if (r < h.length && h[r]!.at < h[m]!.at) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    const t = h[a]!;
    h[a] = h[b]!;
    h[b] = t;
    this.index.set(h[a]!.key, a);
    this.index.set(h[b]!.key, b);
  }
}
