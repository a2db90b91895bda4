import type { StoreLogger } from '../store/store.js';

/** A run of rows by sequence number, [start, end). */
export interface SeqRange {
  start: number;
  end: number;
}

/**
 * The durability watermark: every row with a sequence number below `durable` is durable
 * (or was dropped). Batches may become durable out of order (several commits in flight);
 * the watermark only moves over a contiguous run. Waiters run, in call order, once the
 * watermark passes their sequence number.
 */
export class DurabilityWatermark {
  private mark = 0;
  /** Batches made durable ahead of an earlier one, sorted by start. */
  private doneAhead: SeqRange[] = [];
  private waiters: Array<{ seq: number; fn: () => void }> = [];
  private waiterHead = 0;

  constructor(private readonly logger: StoreLogger | undefined) {}

  /** Rows below this sequence number are durable. */
  get durable(): number {
    return this.mark;
  }

  /** Runs `fn` once every row below `seq` is durable (now, if they are). */
  wait(seq: number, fn: () => void): void {
    if (seq <= this.mark) fn();
    else this.waiters.push({ seq, fn });
  }

  /** Notes a range as durable; the waiters it completes run. */
  done(range: SeqRange): void {
    if (range.end <= this.mark) return;
    if (range.start > this.mark) {
      const ahead = this.doneAhead;
      if (ahead.some((b) => b.start === range.start)) return;
      let i = ahead.length;
      while (i > 0 && ahead[i - 1]!.start > range.start) i--;
      ahead.splice(i, 0, { start: range.start, end: range.end });
      return;
    }
    this.mark = range.end;
    while (this.doneAhead.length > 0 && this.doneAhead[0]!.start <= this.mark) {
      this.mark = Math.max(this.mark, this.doneAhead.shift()!.end);
    }
    this.release();
  }

  /** Rows lost: a caller whose own rows are lost is never told they are durable. */
  lost(range: SeqRange): void {
    const kept: Array<{ seq: number; fn: () => void }> = [];
    for (let i = this.waiterHead; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      if (w.seq <= range.start || w.seq > range.end) kept.push(w);
    }
    this.waiters = kept;
    this.waiterHead = 0;
    this.done(range);
  }

  private release(): void {
    const w = this.waiters;
    let i = this.waiterHead;
    while (i < w.length && w[i]!.seq <= this.mark) {
      const fn = w[i]!.fn;
      i++;
      try {
        fn();
      } catch (err) {
        this.logger?.error({ err }, 'audit durability callback threw');
      }
    }
    if (i === w.length) {
      this.waiters = [];
      this.waiterHead = 0;
    } else if (i > 1024 && i * 2 > w.length) {
      this.waiters = w.slice(i);
      this.waiterHead = 0;
    } else {
      this.waiterHead = i;
    }
  }
}
