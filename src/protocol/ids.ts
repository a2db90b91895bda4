/**
 * Session, message and audit row ids: UUID v7 strings (RFC 9562; time-ordered, so ids
 * sort by creation time and index well). JSON carries them as canonical 36-character
 * strings; the binary protocol carries them as their 16 raw bytes.
 */
import { randomFillSync } from 'node:crypto';

// Two lowercase hex digits per byte value.
const BYTE_HEX: string[] = [];
for (let i = 0; i < 256; i++) BYTE_HEX.push(i.toString(16).padStart(2, '0'));

// Random bytes are drawn from one pool, refilled in blocks: one fill per id costs more
// than the rest of the id.
const POOL_BYTES = 4096;
let pool = Buffer.allocUnsafe(POOL_BYTES);
let poolAt = POOL_BYTES;

/** The offset of `n` fresh random bytes in `pool`. */
function take(n: number): number {
  if (poolAt + n > pool.length) {
    if (n > pool.length) pool = Buffer.allocUnsafe(n);
    randomFillSync(pool);
    poolAt = 0;
  }
  const at = poolAt;
  poolAt += n;
  return at;
}

let lastMs = 0;
let counter = 0;
let msHex = ''; // "xxxxxxxx-xxxx-" of lastMs

function setMs(ms: number): void {
  const h = BYTE_HEX;
  lastMs = ms;
  msHex =
    h[Math.floor(ms / 2 ** 40) & 0xff]! + h[Math.floor(ms / 2 ** 32) & 0xff]! + h[(ms >>> 24) & 0xff]! + h[(ms >>> 16) & 0xff]! +
    '-' + h[(ms >>> 8) & 0xff]! + h[ms & 0xff]! + '-';
}

/** Moves to the current millisecond if the clock went forward; `at` holds 2 random bytes. */
function tick(at: number): void {
  const now = Date.now();
  // A still or backward clock keeps counting on the last millisecond.
  if (now > lastMs) {
    setMs(now);
    counter = ((pool[at]! << 8) | pool[at + 1]!) & 0x7ff;
  }
}

/** The next id; `o` is the offset of 8 random bytes in `pool`. */
function next(o: number): string {
  if (counter > 0xfff) {
    setMs(lastMs + 1); // 4096 ids in one millisecond: borrow the next one
    counter = 0;
  }
  const c = counter++;
  const h = BYTE_HEX;
  const r = pool;
  return (
    msHex + h[0x70 | (c >>> 8)]! + h[c & 0xff]! + '-' +
    h[0x80 | (r[o]! & 0x3f)]! + h[r[o + 1]!]! + '-' +
    h[r[o + 2]!]! + h[r[o + 3]!]! + h[r[o + 4]!]! + h[r[o + 5]!]! + h[r[o + 6]!]! + h[r[o + 7]!]!
  );
}

/**
 * A new UUID v7 in canonical lowercase form (`xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`):
 * 48-bit Unix milliseconds, a 12-bit counter that keeps ids increasing within one
 * millisecond (§6.2 method 1, started at a random value below 2048), 62 random bits.
 * Ids from `newId` and `uuidV7Batch` share one clock, so they increase together.
 */
export function newId(): string {
  const at = take(10);
  tick(at + 8);
  return next(at);
}

/** `n` ids as `newId()` makes them, in increasing order, with one draw from the pool. */
export function uuidV7Batch(n: number): string[] {
  const at = take(n * 8 + 2);
  tick(at + n * 8);
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = next(at + i * 8);
  return out;
}

// Hex digit value per char code, -1 for anything else (uppercase accepted).
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX_VALUE[65 + i] = 10 + i;
  HEX_VALUE[97 + i] = 10 + i;
}

function hexAt(id: string, i: number): number {
  const c = id.charCodeAt(i);
  return c < 128 ? HEX_VALUE[c] : -1;
}

/**
 * The 16 bytes of a canonical UUID string (36 characters, dashes at 8, 13, 18, 23; either
 * case). Throws a TypeError on anything else: ids are made by the server, so a bad one is
 * a programmer fault.
 */
export function idToBytes(id: string): Buffer {
  if (
    id.length !== 36 ||
    id.charCodeAt(8) !== 45 ||
    id.charCodeAt(13) !== 45 ||
    id.charCodeAt(18) !== 45 ||
    id.charCodeAt(23) !== 45
  ) {
    throw new TypeError(`not a UUID: ${JSON.stringify(id)}`);
  }
  const out = Buffer.allocUnsafe(16);
  let i = 0;
  for (let b = 0; b < 16; b++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) i++;
    const hi = hexAt(id, i);
    const lo = hexAt(id, i + 1);
    if ((hi | lo) < 0) throw new TypeError(`not a UUID: ${JSON.stringify(id)}`);
    out[b] = (hi << 4) | lo;
    i += 2;
  }
  return out;
}

/** The canonical lowercase UUID string of 16 bytes. Throws a TypeError unless exactly 16. */
export function bytesToId(b: Uint8Array): string {
  if (b.length !== 16) throw new TypeError(`a UUID is 16 bytes, got ${b.length}`);
  const h = BYTE_HEX;
  return (
    h[b[0]] + h[b[1]] + h[b[2]] + h[b[3]] + '-' +
    h[b[4]] + h[b[5]] + '-' +
    h[b[6]] + h[b[7]] + '-' +
    h[b[8]] + h[b[9]] + '-' +
    h[b[10]] + h[b[11]] + h[b[12]] + h[b[13]] + h[b[14]] + h[b[15]]
  );
}
