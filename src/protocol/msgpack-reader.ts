/**
 * The strict MessagePack reader for everything zenconn decodes: client frames, HTTP
 * bodies, bus messages, stored audit payloads. Its rules (one value, bounded depth, plain
 * objects, `__proto__` an own key, bin copied, only the timestamp ext) are in
 * docs/protocol.md. Not msgpackr's unpacker: that one honours msgpackr's extensions on any
 * input (records compiled with `new Function`, cycles), keeps global state and recurses
 * without a bound.
 */
import { DecodeReason, MAX_DATA_DEPTH } from './frames.js';

/** Thrown inside the reader only; its `reason` is a DecodeReason string. */
export class ReadError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}
const INVALID = DecodeReason.INVALID_MSGPACK;

function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}

/** A strict MessagePack reader over one buffer; `maxDepth` bounds container nesting. */
export class MsgpackReader {
  pos = 0;
  /** Set once a `bin` value has been read. */
  sawBinary = false;
  readonly src: Buffer;
  readonly end: number;
  constructor(data: Uint8Array | ArrayBuffer, readonly maxDepth: number) {
    this.src = asBuffer(data);
    this.end = this.src.length;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) throw new ReadError(INVALID);
  }
  private u8(): number {
    this.need(1);
    return this.src[this.pos++];
  }
  private u16(): number {
    this.need(2);
    const v = this.src.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4);
    const v = this.src.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** An array header's length, or -1 (position unchanged) when the next value is no array. */
  arrayHeader(): number {
    this.need(1);
    const t = this.src[this.pos];
    if (t >= 0x90 && t <= 0x9f) {
      this.pos++;
      return t & 0x0f;
    }
    if (t === 0xdc) {
      this.pos++;
      return this.checkCount(this.u16(), 1);
    }
    if (t === 0xdd) {
      this.pos++;
      return this.checkCount(this.u32(), 1);
    }
    return -1;
  }

  /** Every element takes at least one byte: a count beyond the bytes left is a lie. */
  private checkCount(n: number, bytesPer: number): number {
    if (n * bytesPer > this.end - this.pos) throw new ReadError(INVALID);
    return n;
  }

  /** Fails unless every byte was consumed. */
  finish(): void {
    if (this.pos !== this.end) throw new ReadError(INVALID);
  }

  /** One value; `depth` is the nesting a container read here would have. */
  read(depth: number): unknown {
    const t = this.u8();
    if (t < 0x80) return t;
    if (t < 0x90) return this.map(t & 0x0f, depth);
    if (t < 0xa0) return this.array(t & 0x0f, depth);
    if (t < 0xc0) return this.str(t & 0x1f);
    if (t >= 0xe0) return t - 0x100;
    const src = this.src;
    let v: number;
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.u8());
      case 0xc5:
        return this.bin(this.u16());
      case 0xc6:
        return this.bin(this.u32());
      case 0xc7:
        return this.ext(this.u8());
      case 0xc8:
        return this.ext(this.u16());
      case 0xc9:
        return this.ext(this.u32());
      case 0xca:
        this.need(4);
        v = src.readFloatBE(this.pos);
        this.pos += 4;
        return v;
      case 0xcb:
        this.need(8);
        v = src.readDoubleBE(this.pos);
        this.pos += 8;
        return v;
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        this.need(8);
        v = src.readUInt32BE(this.pos) * 0x100000000 + src.readUInt32BE(this.pos + 4);
        this.pos += 8;
        return v;
      case 0xd0:
        this.need(1);
        return src.readInt8(this.pos++);
      case 0xd1:
        this.need(2);
        v = src.readInt16BE(this.pos);
        this.pos += 2;
        return v;
      case 0xd2:
        this.need(4);
        v = src.readInt32BE(this.pos);
        this.pos += 4;
        return v;
      case 0xd3:
        this.need(8);
        v = src.readInt32BE(this.pos) * 0x100000000 + src.readUInt32BE(this.pos + 4);
        this.pos += 8;
        return v;
      case 0xd4:
        return this.ext(1);
      case 0xd5:
        return this.ext(2);
      case 0xd6:
        return this.ext(4);
      case 0xd7:
        return this.ext(8);
      case 0xd8:
        return this.ext(16);
      case 0xd9:
        return this.str(this.u8());
      case 0xda:
        return this.str(this.u16());
      case 0xdb:
        return this.str(this.u32());
      case 0xdc:
        return this.array(this.u16(), depth);
      case 0xdd:
        return this.array(this.u32(), depth);
      case 0xde:
        return this.map(this.u16(), depth);
      case 0xdf:
        return this.map(this.u32(), depth);
      default: // 0xc1 is never used
        throw new ReadError(INVALID);
    }
  }

  private str(len: number): string {
    this.need(len);
    const src = this.src;
    const start = this.pos;
    const end = start + len;
    this.pos = end;
    if (len < 24) {
      // Short ASCII strings (keys, channels) are cheaper in JS than through a native call.
      let s = '';
      for (let i = start; i < end; i++) {
        const c = src[i];
        if (c >= 0x80) return src.toString('utf8', start, end);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return src.toString('utf8', start, end);
  }

  private bin(len: number): Uint8Array {
    this.need(len);
    const out = new Uint8Array(len);
    out.set(this.src.subarray(this.pos, this.pos + len));
    this.pos += len;
    this.sawBinary = true;
    return out;
  }

  private ext(len: number): Date {
    this.need(1 + len);
    const src = this.src;
    const type = src.readInt8(this.pos++);
    const p = this.pos;
    this.pos += len;
    if (type !== -1) throw new ReadError(DecodeReason.UNSUPPORTED_EXTENSION);
    let seconds: number;
    let nanos: number;
    if (len === 4) {
      seconds = src.readUInt32BE(p);
      nanos = 0;
    } else if (len === 8) {
      const hi = src.readUInt32BE(p);
      nanos = hi >>> 2;
      seconds = (hi & 0x3) * 0x100000000 + src.readUInt32BE(p + 4);
    } else if (len === 12) {
      nanos = src.readUInt32BE(p);
      seconds = src.readInt32BE(p + 4) * 0x100000000 + src.readUInt32BE(p + 8);
    } else {
      throw new ReadError(INVALID);
    }
    if (nanos > 999_999_999) throw new ReadError(INVALID);
    const date = new Date(seconds * 1000 + Math.floor(nanos / 1e6));
    if (Number.isNaN(date.getTime())) throw new ReadError(INVALID);
    return date;
  }

  private array(len: number, depth: number): unknown[] {
    if (depth > this.maxDepth) throw new ReadError(DecodeReason.DATA_TOO_DEEP);
    this.checkCount(len, 1);
    const out = new Array<unknown>(len);
    for (let i = 0; i < len; i++) out[i] = this.read(depth + 1);
    return out;
  }

  private map(len: number, depth: number): Record<string, unknown> {
    if (depth > this.maxDepth) throw new ReadError(DecodeReason.DATA_TOO_DEEP);
    this.checkCount(len, 2);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < len; i++) {
      const k = this.key();
      setOwn(out, k, this.read(depth + 1));
    }
    return out;
  }

  private key(): string {
    this.need(1);
    const t = this.src[this.pos];
    if (t >= 0xa0 && t <= 0xbf) {
      this.pos++;
      return this.str(t & 0x1f);
    }
    // Scalars only: a container or bin key has no faithful object-key form.
    if ((t >= 0x80 && t <= 0x9f) || t === 0xdc || t === 0xdd || t === 0xde || t === 0xdf || (t >= 0xc4 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8)) {
      throw new ReadError(DecodeReason.UNSUPPORTED_MAP_KEY);
    }
    return String(this.read(0));
  }
}

function asBuffer(data: Uint8Array | ArrayBuffer): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return data instanceof ArrayBuffer
    ? Buffer.from(data)
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The result of unpackValue. */
export type UnpackResult =
  | { ok: true; value: unknown; hasBinary: boolean }
  | { ok: false; reason: string };

/**
 * Reads exactly one MessagePack value with the strict reader. Never throws; `reason` is one of the DecodeReason strings. `maxDepth` defaults to
 * MAX_DATA_DEPTH.
 */
export function unpackValue(data: Uint8Array | ArrayBuffer, maxDepth: number = MAX_DATA_DEPTH): UnpackResult {
  try {
    const r = new MsgpackReader(data, maxDepth);
    const value = r.read(1);
    r.finish();
    return { ok: true, value, hasBinary: r.sawBinary };
  } catch (e) {
    return { ok: false, reason: e instanceof ReadError ? e.reason : INVALID };
  }
}
