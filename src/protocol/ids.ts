/**
 * Session and message ids: UUID v7 strings (time-ordered, so ids sort by creation time
 * and index well). JSON carries them as canonical 36-character strings; the binary
 * protocol carries them as their 16 raw bytes.
 */
import { v7 } from 'uuid';

/** A new UUID v7 in canonical lowercase form (`xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`). */
export function newId(): string {
  return v7();
}

// Hex digit value per char code, -1 for anything else (uppercase accepted).
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX_VALUE[65 + i] = 10 + i;
  HEX_VALUE[97 + i] = 10 + i;
}
// Two lowercase hex digits per byte value.
const BYTE_HEX: string[] = [];
for (let i = 0; i < 256; i++) BYTE_HEX.push(i.toString(16).padStart(2, '0'));

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
