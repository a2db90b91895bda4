/**
 * The binary protocol: one MessagePack array per WebSocket binary frame, its first element
 * the kind (`Kind` in frames.ts). See docs/protocol.md.
 *
 * Encoding uses msgpackr restricted to plain MessagePack (no records, no msgpackr
 * extensions), so a client in any language decodes it.
 *
 * Decoding does NOT use msgpackr: its unpacker honours msgpackr's own extensions on any
 * input (record definitions compiled with `new Function`, structured-clone references that
 * build cycles, Error/RegExp/Set/BigInt/typed-array extensions), keeps module-global state
 * and recurses without a bound. Client input gets a small strict reader instead:
 * - exactly one value per frame (trailing bytes are an error), lengths checked against the
 *   bytes left before anything is allocated;
 * - containers nested deeper than MAX_DATA_DEPTH inside the frame: `data too deep`;
 * - maps become plain objects; keys may be strings, numbers, booleans or nil (stringified,
 *   later duplicates win, as in JSON.parse); `__proto__` becomes an own property, as
 *   JSON.parse does, so no prototype is ever touched;
 * - `bin` becomes a fresh Uint8Array (a copy: it does not pin the socket's buffer);
 * - ext -1 (the standard timestamp) becomes a Date; every other ext type is rejected with
 *   `unsupported extension type`;
 * - 64-bit integers become numbers (exact up to 2^53, like JSON.parse with big numbers);
 * - invalid UTF-8 in strings decodes to U+FFFD.
 */
import { Packr } from 'msgpackr';
import type { Codec } from './codec.js';
import {
  DecodeReason,
  Kind,
  MAX_DATA_DEPTH,
  failureChannel,
  validateClientFrame,
  type ClientFrame,
  type DecodeFailure,
  type ServerFrame
} from './frames.js';
import { bytesToId, idToBytes } from './ids.js';

/**
 * The encoder. Plain MessagePack only: `useRecords: false` and `moreTypes: false` keep
 * msgpackr's extensions out; `variableMapSize` gives fixmaps for small objects (msgpackr's
 * default is always map16); `undefined` is sent as nil, not msgpackr's ext 0; floats stay
 * float64 (float32 would change values for other decoders); BigInts beyond 64 bits become
 * floats instead of throwing. Dates go out as standard timestamps (ext -1).
 */
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  largeBigIntToFloat: true,
  useFloat32: 0
});

/** Thrown inside the reader only; decode turns it into a DecodeFailure. */
class ReadError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}
const INVALID = DecodeReason.INVALID_MSGPACK;

function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}

/** A strict MessagePack reader over one buffer. */
class Reader {
  pos = 0;
  /** Set once a `bin` value has been read. */
  sawBinary = false;
  readonly end: number;
  constructor(readonly src: Buffer, readonly maxDepth: number) {
    this.end = src.length;
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
 * Reads exactly one MessagePack value with the strict reader described at the top of this
 * file (for MessagePack bodies outside WebSocket frames, e.g. the HTTP publish API).
 * Never throws; `reason` is one of the DecodeReason strings. `maxDepth` defaults to
 * MAX_DATA_DEPTH.
 */
export function unpackValue(data: Uint8Array | ArrayBuffer, maxDepth: number = MAX_DATA_DEPTH): UnpackResult {
  try {
    const r = new Reader(asBuffer(data), maxDepth);
    const value = r.read(1);
    r.finish();
    return { ok: true, value, hasBinary: r.sawBinary };
  } catch (e) {
    return { ok: false, reason: e instanceof ReadError ? e.reason : INVALID };
  }
}

const CLIENT_KINDS: Array<ClientFrame['type'] | undefined> = [];
CLIENT_KINDS[Kind.subscribe] = 'subscribe';
CLIENT_KINDS[Kind.unsubscribe] = 'unsubscribe';
CLIENT_KINDS[Kind.broadcast] = 'broadcast';

function decodeClient(data: Buffer, isBinary: boolean): ClientFrame | DecodeFailure {
  if (!isBinary) return { channel: '*', errors: [DecodeReason.EXPECTED_BINARY] };
  // The frame array is depth 1, so data's own containers start at 2.
  const r = new Reader(asBuffer(data), MAX_DATA_DEPTH + 1);
  let channel: unknown;
  let kind: unknown;
  let third: unknown;
  let n: number;
  try {
    n = r.arrayHeader();
    if (n < 0) {
      r.read(1);
      r.finish();
      return { channel: '*', errors: [DecodeReason.INVALID_FRAME] };
    }
    if (n > 0) kind = r.read(2);
    if (n > 1) channel = r.read(2);
    if (n > 2) third = r.read(2);
    // Elements a newer client may add: checked for well-formedness, then ignored.
    for (let i = 3; i < n; i++) r.read(2);
    r.finish();
  } catch (e) {
    return { channel: failureChannel(channel), errors: [e instanceof ReadError ? e.reason : INVALID] };
  }
  return validateClientFrame({
    type: typeof kind === 'number' ? (CLIENT_KINDS[kind] ?? null) : null,
    channel,
    token: third,
    hasData: n > 2,
    data: third,
    hasBinary: r.sawBinary
  });
}

function idOrNil(id: string | null): Buffer | null {
  return id === null ? null : idToBytes(id);
}

/** The MessagePack array of a server frame (see the kind table in docs/protocol.md). */
function serverFrameArray(frame: ServerFrame): unknown[] {
  switch (frame.type) {
    case 'accepted':
      return [Kind.accepted, idToBytes(frame.data)];
    case 'subscribed':
    case 'unauthorized':
    case 'unsubscribed':
      return [Kind[frame.type], frame.channel];
    case 'received':
      return [Kind.received, frame.channel, frame.count];
    case 'event':
      return [Kind.event, frame.channel, frame.data === undefined ? null : frame.data, idOrNil(frame.from), idToBytes(frame.id)];
    case 'joined':
    case 'left':
      return [Kind[frame.type], frame.channel, idToBytes(frame.data.session), frame.data.user];
    case 'error':
      return [Kind.error, frame.channel, frame.errors];
    default:
      throw new TypeError(`unknown server frame type ${JSON.stringify((frame as { type: unknown }).type)}`);
  }
}

/**
 * The binary codec (`bin`, binary frames).
 * - decode: a text frame fails with `expected a binary frame`; never throws.
 * - encode: ids as 16-byte bin, data as plain MessagePack (binary stays bin). Throws only
 *   on a programmer fault (an id that is no UUID, a cyclic data value).
 */
export const binaryCodec: Codec = {
  name: 'bin',
  binary: true,
  decode: decodeClient,
  encode(frame: ServerFrame): Buffer {
    return packr.pack(serverFrameArray(frame));
  }
};

/** The MessagePack bytes of a client frame (what a client sends in a binary frame). */
export function encodeClientFrame(frame: ClientFrame): Buffer {
  switch (frame.type) {
    case 'subscribe':
      return packr.pack(
        frame.token === undefined ? [Kind.subscribe, frame.channel] : [Kind.subscribe, frame.channel, frame.token]
      );
    case 'unsubscribe':
      return packr.pack([Kind.unsubscribe, frame.channel]);
    case 'broadcast':
      return packr.pack([Kind.broadcast, frame.channel, frame.data === undefined ? null : frame.data]);
    default:
      throw new TypeError(`unknown client frame type ${JSON.stringify((frame as { type: unknown }).type)}`);
  }
}

/** Packs any value as plain MessagePack with the codec's settings (e.g. HTTP API answers). */
export function packValue(value: unknown): Buffer {
  return packr.pack(value);
}

function fail(what: string): never {
  throw new TypeError(`malformed server frame: ${what}`);
}
function str(v: unknown, what: string): string {
  return typeof v === 'string' ? v : fail(`${what} is not a string`);
}
function id(v: unknown, what: string): string {
  return v instanceof Uint8Array && v.length === 16 ? bytesToId(v) : fail(`${what} is not a 16-byte bin`);
}

/**
 * Client side: reads a server frame from MessagePack bytes. Ids come back as canonical
 * UUID strings, bin inside data as Uint8Array; trailing unknown elements are ignored.
 * Throws a TypeError on anything that is not a well-formed server frame.
 */
export function decodeServerFrame(data: Uint8Array | ArrayBuffer): ServerFrame {
  const res = unpackValue(data, MAX_DATA_DEPTH + 1);
  if (!res.ok) fail(res.reason);
  const a = res.value;
  if (!Array.isArray(a) || a.length === 0) fail('not a non-empty array');
  const [kind, channel, x, y, z] = a as unknown[];
  switch (kind) {
    case Kind.accepted:
      return { type: 'accepted', data: id(channel, 'session') };
    case Kind.subscribed:
      return { type: 'subscribed', channel: str(channel, 'channel') };
    case Kind.unauthorized:
      return { type: 'unauthorized', channel: str(channel, 'channel') };
    case Kind.unsubscribed:
      return { type: 'unsubscribed', channel: str(channel, 'channel') };
    case Kind.received:
      return { type: 'received', channel: str(channel, 'channel'), count: typeof x === 'number' ? x : fail('count is not a number') };
    case Kind.event:
      if (a.length < 5) fail('event with fewer than 5 elements');
      return {
        type: 'event',
        channel: str(channel, 'channel'),
        data: x,
        from: y === null ? null : id(y, 'from'),
        id: id(z, 'id')
      };
    case Kind.joined:
    case Kind.left:
      if (a.length < 4) fail('member notice with fewer than 4 elements');
      return {
        type: kind === Kind.joined ? 'joined' : 'left',
        channel: str(channel, 'channel'),
        data: { session: id(x, 'session'), user: y === null ? null : str(y, 'user') }
      };
    case Kind.error:
      if (!Array.isArray(x) || !x.every((e) => typeof e === 'string')) fail('errors is not an array of strings');
      return { type: 'error', channel: str(channel, 'channel'), errors: x as string[] };
    default:
      return fail(`unknown kind ${String(kind)}`);
  }
}
