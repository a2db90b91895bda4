/**
 * The JSON protocol: one JSON object per WebSocket text frame. See docs/protocol.md.
 *
 * Decoding is JSON.parse (iterative in V8, so deep input cannot exhaust the stack, and it
 * makes `__proto__` an own property instead of touching a prototype) followed by the shared
 * validation in frames.ts. Encoding builds the envelope by concatenation around
 * JSON.stringify of the variable parts.
 */
import type { Codec } from './codec.js';
import {
  DecodeReason,
  MAX_DATA_DEPTH,
  failureChannel,
  validateClientFrame,
  type ClientFrame,
  type DecodeFailure,
  type EventFrame,
  type MemberInfo,
  type ServerFrame
} from './frames.js';

const CLIENT_TYPES: Record<string, ClientFrame['type'] | undefined> = Object.assign(Object.create(null), {
  subscribe: 'subscribe',
  unsubscribe: 'unsubscribe',
  broadcast: 'broadcast',
  refresh: 'refresh',
  history: 'history',
  presence: 'presence'
});

/**
 * Whether the bracket nesting of a valid JSON text exceeds `limit`. Scans bytes: quotes
 * toggle string mode, backslash skips the next byte; UTF-8 continuation bytes are all
 * >= 0x80 so they never look like brackets.
 */
function nestingExceeds(buf: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0, n = buf.length; i < n; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** UTF-8 text of a Buffer, or of any Uint8Array a future transport might hand over. */
function utf8(data: Uint8Array): string {
  return (Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)).toString('utf8');
}

function decodeClient(data: Buffer): ClientFrame | DecodeFailure {
  let value: unknown;
  try {
    // A binary frame on a JSON session is read as UTF-8 too (lenient); invalid sequences
    // become U+FFFD. Text frames were already UTF-8-checked by the transport.
    value = JSON.parse(utf8(data));
  } catch {
    return { channel: '*', errors: [DecodeReason.INVALID_JSON] };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { channel: '*', errors: [DecodeReason.INVALID_FRAME] };
  }
  const obj = value as Record<string, unknown>;
  const channel = Object.hasOwn(obj, 'channel') ? obj.channel : undefined;
  // Valid JSON needs 2 bytes per level, so short frames cannot be too deep: skip the scan.
  // The envelope object is one level, hence the +1.
  if (data.length > 2 * (MAX_DATA_DEPTH + 1) && nestingExceeds(data, MAX_DATA_DEPTH + 1)) {
    return { channel: failureChannel(channel), errors: [DecodeReason.DATA_TOO_DEEP] };
  }
  const type = typeof obj.type === 'string' ? (CLIENT_TYPES[obj.type] ?? null) : null;
  const hasData = Object.hasOwn(obj, 'data');
  return validateClientFrame({
    type,
    channel,
    token: Object.hasOwn(obj, 'token') ? obj.token : undefined,
    hasData,
    data: hasData ? obj.data : undefined,
    hasBinary: false,
    depthChecked: true,
    since: Object.hasOwn(obj, 'since') ? obj.since : undefined,
    limit: Object.hasOwn(obj, 'limit') ? obj.limit : undefined
  });
}

/** Standard base64 (with padding) of an ArrayBuffer or any view on one. */
function base64(v: ArrayBufferView | ArrayBuffer): string {
  const b = ArrayBuffer.isView(v)
    ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
    : Buffer.from(v);
  return b.toString('base64');
}

function isBinaryValue(v: object): v is ArrayBufferView | ArrayBuffer {
  return ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

/** Sets an own data property, `__proto__` included (plain assignment would set the prototype). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}

/**
 * `value` with every binary value (Uint8Array/Buffer, other ArrayBuffer views, ArrayBuffer)
 * replaced by its base64 string, and every BigInt by the nearest number. Copy-on-write:
 * containers without binary inside are returned as they are, so data without binary
 * costs one walk and no allocation.
 */
export function binaryToBase64(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) {
    // JSON has no BigInt (JSON.stringify throws on one). The decoders never make them,
    // but server-side data might: send the nearest number, as 64-bit integers decode.
    return typeof value === 'bigint' ? Number(value) : value;
  }
  if (isBinaryValue(value)) return base64(value);
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const mapped = binaryToBase64(item);
      if (mapped !== item) (out ??= value.slice())[i] = mapped;
    }
    return out ?? value;
  }
  // Objects with their own JSON form (Date, …) are left to JSON.stringify.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const obj = value as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(obj)) {
    const item = obj[k];
    const mapped = binaryToBase64(item);
    if (mapped !== item) setOwn((out ??= { ...obj }), k, mapped);
  }
  return out ?? value;
}

/** Whether `value` holds a binary value (Uint8Array/Buffer, ArrayBuffer view, ArrayBuffer) anywhere. */
export function containsBinary(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (isBinaryValue(value)) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (containsBinary(value[i])) return true;
    return false;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (containsBinary(obj[k])) return true;
  return false;
}

function dataJson(data: unknown, hasBinary: boolean | undefined): string {
  // `undefined` is not JSON: send null rather than an invalid frame.
  return JSON.stringify(hasBinary === false ? data : binaryToBase64(data)) ?? 'null';
}

function memberJson(m: MemberInfo): string {
  return '{"session":' + JSON.stringify(m.session) + ',"user":' + (m.user === null ? 'null' : JSON.stringify(m.user)) + '}';
}

/** The JSON text of a server frame, fields in the documented order. */
export function encodeServerFrameText(frame: ServerFrame): string {
  switch (frame.type) {
    case 'accepted':
      return '{"type":"accepted","data":' + JSON.stringify(frame.data) + '}';
    case 'subscribed':
      if (frame.offset !== undefined) {
        return (
          '{"type":"subscribed","channel":' + JSON.stringify(frame.channel) +
          (frame.recovered === undefined ? '' : ',"recovered":' + (frame.recovered ? 'true' : 'false')) +
          ',"offset":' + frame.offset + ',"epoch":' + JSON.stringify(frame.epoch ?? '') + '}'
        );
      }
      // No position (the sequencer could not be asked): `recovered:false` still goes out.
      return '{"type":"subscribed","channel":' + JSON.stringify(frame.channel) + (frame.recovered === undefined ? '' : ',"recovered":' + (frame.recovered ? 'true' : 'false')) + '}';
    case 'unauthorized':
    case 'unsubscribed':
      return '{"type":"' + frame.type + '","channel":' + JSON.stringify(frame.channel) + '}';
    case 'history':
      return (
        '{"type":"history","channel":' + JSON.stringify(frame.channel) +
        ',"events":[' + frame.events.map(encodeServerFrameText).join(',') +
        '],"offset":' + frame.offset + ',"epoch":' + JSON.stringify(frame.epoch) +
        ',"complete":' + (frame.complete ? 'true' : 'false') + '}'
      );
    case 'received':
      return '{"type":"received","channel":' + JSON.stringify(frame.channel) + ',"count":' + JSON.stringify(frame.count) + '}';
    case 'event':
      return (
        '{"type":"event","channel":' + JSON.stringify(frame.channel) +
        ',"data":' + dataJson(frame.data, frame.hasBinary) +
        ',"from":' + (frame.from === null ? 'null' : JSON.stringify(frame.from)) +
        ',"id":' + JSON.stringify(frame.id) +
        (frame.offset === undefined ? '}' : ',"offset":' + frame.offset + ',"epoch":' + JSON.stringify(frame.epoch) + '}')
      );
    case 'joined':
    case 'left':
      return '{"type":"' + frame.type + '","channel":' + JSON.stringify(frame.channel) + ',"data":' + memberJson(frame.data) + '}';
    case 'error':
      return '{"type":"error","channel":' + JSON.stringify(frame.channel) + ',"errors":' + JSON.stringify(frame.errors) + '}';
    case 'refreshed':
      return '{"type":"refreshed","exp":' + (frame.exp === null ? 'null' : JSON.stringify(frame.exp)) + '}';
    case 'presence':
      return (
        '{"type":"presence","channel":' + JSON.stringify(frame.channel) +
        ',"members":[' + frame.members.map(memberJson).join(',') + ']' +
        (frame.truncated ? ',"truncated":true}' : '}')
      );
    default:
      throw new TypeError(`unknown server frame type ${JSON.stringify((frame as { type: unknown }).type)}`);
  }
}

/**
 * The JSON codec (`json`, text frames).
 * - decode: a binary frame is parsed as UTF-8 JSON too (lenient); never throws.
 * - encode: binary values inside event data become base64 strings, found by a walk
 *   unless the frame says `hasBinary: false` (see ServerFrame).
 */
export const jsonCodec: Codec = {
  name: 'json',
  binary: false,
  decode(data: Buffer, _isBinary: boolean): ClientFrame | DecodeFailure {
    return decodeClient(data);
  },
  encode(frame: ServerFrame): Buffer {
    return Buffer.from(encodeServerFrameText(frame), 'utf8');
  }
};

/** The JSON text of a client frame (what a client sends in a text frame). */
export function encodeClientFrame(frame: ClientFrame): string {
  switch (frame.type) {
    case 'subscribe': {
      const o: Record<string, unknown> = { type: 'subscribe', channel: frame.channel };
      if (frame.token !== undefined) o.token = frame.token;
      if (frame.since !== undefined) o.since = { offset: frame.since.offset, epoch: frame.since.epoch };
      return JSON.stringify(o);
    }
    case 'history':
      return JSON.stringify({ type: 'history', channel: frame.channel, since: frame.since, limit: frame.limit });
    case 'unsubscribe':
      return JSON.stringify({ type: 'unsubscribe', channel: frame.channel });
    case 'broadcast':
      return '{"type":"broadcast","channel":' + JSON.stringify(frame.channel) + ',"data":' + dataJson(frame.data, frame.hasBinary) + '}';
    case 'refresh':
      return '{"type":"refresh","token":' + JSON.stringify(frame.token) + '}';
    case 'presence':
      return '{"type":"presence","channel":' + JSON.stringify(frame.channel) + '}';
    default:
      throw new TypeError(`unknown client frame type ${JSON.stringify((frame as { type: unknown }).type)}`);
  }
}

function fail(what: string): never {
  throw new TypeError(`malformed server frame: ${what}`);
}
function str(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  return typeof v === 'string' ? v : fail(`${k} is not a string`);
}
function strOrNull(o: Record<string, unknown>, k: string): string | null {
  const v = o[k];
  return v === null || typeof v === 'string' ? v : fail(`${k} is not a string or null`);
}

/**
 * Client side: parses a server frame from JSON text (string, Buffer or bytes). Throws a
 * TypeError on anything that is not a well-formed server frame; unknown fields are dropped.
 */
export function decodeServerFrame(data: string | Uint8Array | ArrayBuffer): ServerFrame {
  const text = typeof data === 'string'
    ? data
    : (data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)).toString('utf8');
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('not an object');
  const o = v as Record<string, unknown>;
  switch (o.type) {
    case 'accepted':
      return { type: 'accepted', data: str(o, 'data') };
    case 'subscribed':
      if (typeof o.offset === 'number') {
        const f: ServerFrame = { type: 'subscribed', channel: str(o, 'channel'), offset: o.offset, epoch: str(o, 'epoch') };
        if (typeof o.recovered === 'boolean') f.recovered = o.recovered;
        return f;
      }
      if (typeof o.recovered === 'boolean') return { type: o.type, channel: str(o, 'channel'), recovered: o.recovered };
      return { type: o.type, channel: str(o, 'channel') };
    case 'unauthorized':
    case 'unsubscribed':
      return { type: o.type, channel: str(o, 'channel') };
    case 'history': {
      const events = o.events;
      if (!Array.isArray(events)) fail('events is not an array');
      if (typeof o.offset !== 'number' || typeof o.complete !== 'boolean') fail('history without offset or complete');
      return {
        type: 'history',
        channel: str(o, 'channel'),
        events: events.map((e) => decodeServerFrame(JSON.stringify(e)) as EventFrame),
        offset: o.offset,
        epoch: str(o, 'epoch'),
        complete: o.complete
      };
    }
    case 'received': {
      const count = o.count;
      if (typeof count !== 'number') fail('count is not a number');
      return { type: 'received', channel: str(o, 'channel'), count };
    }
    case 'event': {
      if (!Object.hasOwn(o, 'data')) fail('event without data');
      const f: EventFrame = { type: 'event', channel: str(o, 'channel'), data: o.data, from: strOrNull(o, 'from'), id: str(o, 'id') };
      if (typeof o.offset === 'number') {
        f.offset = o.offset;
        f.epoch = str(o, 'epoch');
      }
      return f;
    }
    case 'joined':
    case 'left': {
      const d = o.data;
      if (typeof d !== 'object' || d === null) fail('data is not an object');
      const m = d as Record<string, unknown>;
      return { type: o.type, channel: str(o, 'channel'), data: { session: str(m, 'session'), user: strOrNull(m, 'user') } };
    }
    case 'error': {
      const errors = o.errors;
      if (!Array.isArray(errors) || !errors.every((e) => typeof e === 'string')) fail('errors is not an array of strings');
      return { type: 'error', channel: str(o, 'channel'), errors: errors as string[] };
    }
    case 'refreshed': {
      const exp = o.exp;
      if (exp !== null && typeof exp !== 'number') fail('exp is not a number or null');
      return { type: 'refreshed', exp };
    }
    case 'presence': {
      const members = o.members;
      if (!Array.isArray(members)) fail('members is not an array');
      const list = members.map((m: unknown) => {
        if (typeof m !== 'object' || m === null) fail('a member is not an object');
        const r = m as Record<string, unknown>;
        return { session: str(r, 'session'), user: strOrNull(r, 'user') };
      });
      return { type: 'presence', channel: str(o, 'channel'), members: list, truncated: o.truncated === true };
    }
    default:
      return fail(`unknown type ${JSON.stringify(o.type)}`);
  }
}
