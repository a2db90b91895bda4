import { randomFillSync } from 'node:crypto';

/** Two lowercase hex digits per byte value. */
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

let lastMs = 0;
let counter = 0;
let pool = Buffer.alloc(0);

/**
 * `n` UUID v7 ids (RFC 9562) for the rows of one batch, in increasing order: 48-bit
 * Unix milliseconds, then a 12-bit counter that keeps ids monotonic within one
 * millisecond (§6.2 method 1, started at a random value below 2048), then 62 random
 * bits. Same format as `newId()` (src/protocol/ids.ts); made here because the writer
 * needs one per row and one random fill per batch is much cheaper than one per id.
 */
export function uuidV7Batch(n: number): string[] {
  if (pool.length < n * 8 + 2) pool = Buffer.allocUnsafe(Math.max(4096, n * 8 + 2));
  const rnd = pool;
  randomFillSync(rnd, 0, n * 8 + 2);
  let ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    counter = ((rnd[n * 8]! << 8) | rnd[n * 8 + 1]!) & 0x7ff;
  } else {
    ms = lastMs; // the clock stood still or went back: keep counting on the last millisecond
  }
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (counter > 0xfff) {
      lastMs = ++ms; // 4096 ids in one millisecond: borrow the next one
      counter = 0;
    }
    const c = counter++;
    const o = i * 8;
    const t = HEX[Math.floor(ms / 2 ** 40) & 0xff]! + HEX[Math.floor(ms / 2 ** 32) & 0xff]! + HEX[(ms >>> 24) & 0xff]! + HEX[(ms >>> 16) & 0xff]!;
    out[i] =
      t + '-' + HEX[(ms >>> 8) & 0xff]! + HEX[ms & 0xff]! + '-' +
      HEX[0x70 | (c >>> 8)]! + HEX[c & 0xff]! + '-' +
      HEX[0x80 | (rnd[o]! & 0x3f)]! + HEX[rnd[o + 1]!]! + '-' +
      HEX[rnd[o + 2]!]! + HEX[rnd[o + 3]!]! + HEX[rnd[o + 4]!]! + HEX[rnd[o + 5]!]! + HEX[rnd[o + 6]!]! + HEX[rnd[o + 7]!]!;
  }
  return out;
}
