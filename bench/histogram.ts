/**
 * A latency histogram that client processes fill and the load generator merges.
 *
 * Log-linear buckets over integer microseconds: exact below 128 µs, then 128 buckets
 * per power of two (under 0.8 % relative error), up to 2^31 µs. A fixed 3,200-slot
 * array, so memory does not grow with the number of samples, and two histograms
 * merge by adding slots, which is what crosses the IPC channel (as sparse pairs).
 */

const SUB_BITS = 7;
const SUB_COUNT = 1 << SUB_BITS;
/** Slots: values up to 2^31 µs (about 36 minutes). */
const SLOTS = (31 - SUB_BITS + 1) * SUB_COUNT;

/** Sparse form for IPC: [slot, count] pairs. */
export type SparseHistogram = Array<[number, number]>;

/** Latency samples in microseconds; see the module comment for the bucket layout. */
export class Histogram {
  private readonly counts = new Float64Array(SLOTS);
  /** Samples recorded. */
  total = 0;

  /** Record one value in microseconds (negative values count as 0). */
  record(micros: number): void {
    this.counts[slotOf(micros)]! += 1;
    this.total += 1;
  }

  /** Add another histogram's samples, as sent by `toSparse`. */
  merge(sparse: SparseHistogram): void {
    for (const [slot, count] of sparse) {
      this.counts[slot]! += count;
      this.total += count;
    }
  }

  toSparse(): SparseHistogram {
    const out: SparseHistogram = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      const count = this.counts[slot]!;
      if (count > 0) out.push([slot, count]);
    }
    return out;
  }

  /** The value at quantile q (0..1), in microseconds; NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let slot = 0; slot < SLOTS; slot++) {
      seen += this.counts[slot]!;
      if (seen >= rank) return valueOf(slot);
    }
    return valueOf(SLOTS - 1);
  }
}

function slotOf(micros: number): number {
  const v = micros <= 0 ? 0 : Math.min(Math.floor(micros), 0x7fffffff);
  if (v < SUB_COUNT) return v;
  const exponent = 31 - Math.clz32(v); // >= SUB_BITS
  const octave = exponent - SUB_BITS + 1;
  const mantissa = v >>> (exponent - SUB_BITS); // in [SUB_COUNT, 2 * SUB_COUNT)
  return octave * SUB_COUNT + (mantissa - SUB_COUNT);
}

/** Midpoint of a slot's range. */
function valueOf(slot: number): number {
  if (slot < SUB_COUNT) return slot;
  const octave = slot >>> SUB_BITS;
  const mantissa = (slot & (SUB_COUNT - 1)) + SUB_COUNT;
  const width = 2 ** (octave - 1);
  return mantissa * width + width / 2;
}
