/**
 * The MessagePack subset the zenconn protocol uses, for the client library: nil, booleans,
 * integers (64-bit ones read as numbers: exact up to ±2^53), floats, strings, bin
 * (Uint8Array), arrays, maps and the timestamp extension (-1, as Date). Any other
 * extension is refused, as the server refuses it.
 *
 * Why not msgpackr: its pack + unpack, minified and gzipped, is about 10.4 KB by itself,
 * the whole budget of the browser bundle. This file is about 1 KB of it. It uses only
 * what browsers and Node share (Uint8Array, DataView, TextEncoder/TextDecoder).
 */

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Thrown on bytes that are not one well-formed value of the subset. */
export class MsgpackError extends Error {}

/** Encodes `value` (JSON values, Uint8Array, Date; `undefined` becomes nil). */
export function pack(value: unknown): Uint8Array {
  const w = new Writer();
  w.value(value, 0);
  return w.bytes();
}

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf);
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  private u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  private head(v: number, n: number, setter: 'setUint8' | 'setUint16' | 'setUint32', size: number): void {
    this.u8(v);
    this.room(size);
    this.view[setter](this.pos, n);
    this.pos += size;
  }
  private raw(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** A length header: fix form when `fix` allows, else the 8/16/32-bit one from `base`. */
  private len(n: number, fix: number, fixMax: number, b8: number, b16: number, b32: number): void {
    if (n <= fixMax && fix >= 0) this.u8(fix | n);
    else if (n < 0x100 && b8 >= 0) this.head(b8, n, 'setUint8', 1);
    else if (n < 0x10000) this.head(b16, n, 'setUint16', 2);
    else this.head(b32, n, 'setUint32', 4);
  }

  value(v: unknown, depth: number): void {
    if (depth > 100) throw new MsgpackError('value nested too deep');
    if (v === null || v === undefined) this.u8(0xc0);
    else if (v === false) this.u8(0xc2);
    else if (v === true) this.u8(0xc3);
    else if (typeof v === 'number') this.number(v);
    else if (typeof v === 'string') {
      const b = utf8Encoder.encode(v);
      this.len(b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      this.raw(b);
    } else if (v instanceof Uint8Array) {
      this.len(v.length, -1, -1, 0xc4, 0xc5, 0xc6);
      this.raw(v);
    } else if (v instanceof ArrayBuffer) {
      this.value(new Uint8Array(v), depth);
    } else if (v instanceof Date) {
      this.timestamp(v);
    } else if (Array.isArray(v)) {
      this.len(v.length, 0x90, 15, -1, 0xdc, 0xdd);
      for (const x of v) this.value(x, depth + 1);
    } else if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
      this.len(entries.length, 0x80, 15, -1, 0xde, 0xdf);
      for (const [k, x] of entries) {
        this.value(k, depth + 1);
        this.value(x, depth + 1);
      }
    } else throw new MsgpackError(`cannot encode a ${typeof v}`);
  }

  private number(n: number): void {
    if (Number.isInteger(n) && n >= -0x80000000 && n < 0x100000000) {
      if (n >= 0 && n < 0x80) this.u8(n);
      else if (n < 0 && n >= -32) this.u8(n & 0xff);
      else if (n >= 0) this.len(n, -1, -1, 0xcc, 0xcd, 0xce);
      else if (n >= -0x80) this.head(0xd0, n & 0xff, 'setUint8', 1);
      else if (n >= -0x8000) this.head(0xd1, n & 0xffff, 'setUint16', 2);
      else this.head(0xd2, n >>> 0, 'setUint32', 4);
      return;
    }
    // Other integers (beyond 32 bits) and fractions: float64, exact for every double.
    this.u8(0xcb);
    this.room(8);
    this.view.setFloat64(this.pos, n);
    this.pos += 8;
  }

  private timestamp(d: Date): void {
    const ms = d.getTime();
    const sec = Math.floor(ms / 1000);
    const nsec = (ms - sec * 1000) * 1e6;
    // timestamp 96: nanoseconds (u32) then seconds (i64), any date.
    this.u8(0xc7);
    this.u8(12);
    this.u8(0xff);
    this.room(12);
    this.view.setUint32(this.pos, nsec);
    this.view.setBigInt64(this.pos + 4, BigInt(sec));
    this.pos += 12;
  }
}

/** Decodes exactly one value from `bytes`; throws a MsgpackError otherwise. */
export function unpack(bytes: Uint8Array | ArrayBuffer): unknown {
  const r = new Reader(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  const v = r.value();
  if (r.pos !== r.src.length) throw new MsgpackError('trailing bytes');
  return v;
}

class Reader {
  pos = 0;
  readonly view: DataView;
  constructor(readonly src: Uint8Array) {
    this.view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  }

  private take(n: number): number {
    const at = this.pos;
    if (at + n > this.src.length) throw new MsgpackError('truncated');
    this.pos += n;
    return at;
  }
  private uint(size: number): number {
    const at = this.take(size);
    return size === 1 ? this.view.getUint8(at) : size === 2 ? this.view.getUint16(at) : size === 4 ? this.view.getUint32(at) : Number(this.view.getBigUint64(at));
  }
  private int(size: number): number {
    const at = this.take(size);
    return size === 1 ? this.view.getInt8(at) : size === 2 ? this.view.getInt16(at) : size === 4 ? this.view.getInt32(at) : Number(this.view.getBigInt64(at));
  }
  private str(n: number): string {
    const at = this.take(n);
    return utf8Decoder.decode(this.src.subarray(at, at + n));
  }
  private bin(n: number): Uint8Array {
    const at = this.take(n);
    // A copy, and a plain Uint8Array even when the input is a Node Buffer.
    const out = new Uint8Array(n);
    out.set(this.src.subarray(at, at + n));
    return out;
  }
  private array(n: number): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(this.value());
    return out;
  }
  private map(n: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const k = String(this.value());
      const v = this.value();
      // An own key even for `__proto__`, as the server reads it.
      Object.defineProperty(out, k, { value: v, writable: true, enumerable: true, configurable: true });
    }
    return out;
  }
  private ext(n: number): Date {
    const type = this.int(1);
    const at = this.take(n);
    if (type !== -1) throw new MsgpackError(`unsupported extension type ${type}`);
    if (n === 4) return new Date(this.view.getUint32(at) * 1000);
    if (n === 8) {
      const hi = this.view.getUint32(at);
      const lo = this.view.getUint32(at + 4);
      return new Date(((hi & 0x3) * 0x100000000 + lo) * 1000 + Math.floor((hi >>> 2) / 1e6));
    }
    if (n === 12) return new Date(Number(this.view.getBigInt64(at + 4)) * 1000 + Math.floor(this.view.getUint32(at) / 1e6));
    throw new MsgpackError('bad timestamp');
  }

  value(): unknown {
    const t = this.uint(1);
    if (t < 0x80) return t;
    if (t < 0x90) return this.map(t & 0x0f);
    if (t < 0xa0) return this.array(t & 0x0f);
    if (t < 0xc0) return this.str(t & 0x1f);
    if (t >= 0xe0) return t - 0x100;
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.uint(1));
      case 0xc5: return this.bin(this.uint(2));
      case 0xc6: return this.bin(this.uint(4));
      case 0xc7: return this.ext(this.uint(1));
      case 0xc8: return this.ext(this.uint(2));
      case 0xc9: return this.ext(this.uint(4));
      case 0xca: return this.view.getFloat32(this.take(4));
      case 0xcb: return this.view.getFloat64(this.take(8));
      case 0xcc: return this.uint(1);
      case 0xcd: return this.uint(2);
      case 0xce: return this.uint(4);
      case 0xcf: return this.uint(8);
      case 0xd0: return this.int(1);
      case 0xd1: return this.int(2);
      case 0xd2: return this.int(4);
      case 0xd3: return this.int(8);
      case 0xd4: return this.ext(1);
      case 0xd5: return this.ext(2);
      case 0xd6: return this.ext(4);
      case 0xd7: return this.ext(8);
      case 0xd8: return this.ext(16);
      case 0xd9: return this.str(this.uint(1));
      case 0xda: return this.str(this.uint(2));
      case 0xdb: return this.str(this.uint(4));
      case 0xdc: return this.array(this.uint(2));
      case 0xdd: return this.array(this.uint(4));
      case 0xde: return this.map(this.uint(2));
      case 0xdf: return this.map(this.uint(4));
    }
    throw new MsgpackError(`invalid byte 0x${t.toString(16)}`);
  }
}
