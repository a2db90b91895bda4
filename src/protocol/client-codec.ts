/**
 * The client's side of both protocols, for tests, the load generator and Node clients:
 * encode what a client sends, decode what the server sends.
 */
import type { ProtocolName } from './codec.js';
import { Kind, MAX_DATA_DEPTH, type ClientFrame, type EventFrame, type ServerFrame } from './frames.js';
import { bytesToId } from './ids.js';
import {
  decodeServerFrame as decodeJsonServerFrame,
  encodeClientFrame as encodeJsonClientFrame
} from './json-codec.js';
import { packValue } from './msgpack-encoder.js';
import { unpackValue } from './msgpack-reader.js';

/**
 * A client frame ready for `WebSocket.send`: a string (text frame) for `json`, a Buffer
 * (binary frame) for `bin`. Binary values in a JSON broadcast's data become base64.
 */
export function encodeClientFrame(protocol: ProtocolName, frame: ClientFrame): string | Buffer {
  return protocol === 'bin' ? encodeBinaryClientFrame(frame) : encodeJsonClientFrame(frame);
}

/**
 * A server frame from what the socket delivered (string, Buffer, Uint8Array or
 * ArrayBuffer). Throws a TypeError (or SyntaxError for bad JSON) on a malformed frame.
 */
export function decodeServerFrame(protocol: ProtocolName, data: string | Uint8Array | ArrayBuffer): ServerFrame {
  if (protocol === 'bin') {
    if (typeof data === 'string') throw new TypeError('malformed server frame: text frame on a binary session');
    return decodeBinaryServerFrame(data);
  }
  return decodeJsonServerFrame(data);
}

/** The MessagePack bytes of a client frame (what a client sends in a binary frame). */
export function encodeBinaryClientFrame(frame: ClientFrame): Buffer {
  switch (frame.type) {
    case 'subscribe':
      if (frame.since !== undefined) return packValue([Kind.subscribe, frame.channel, frame.token ?? null, frame.since.offset, frame.since.epoch]);
      return packValue(
        frame.token === undefined ? [Kind.subscribe, frame.channel] : [Kind.subscribe, frame.channel, frame.token]
      );
    case 'history':
      return packValue([Kind.history, frame.channel, frame.since?.offset ?? null, frame.since?.epoch ?? null, frame.limit]);
    case 'unsubscribe':
      return packValue([Kind.unsubscribe, frame.channel]);
    case 'broadcast':
      return packValue([Kind.broadcast, frame.channel, frame.data === undefined ? null : frame.data]);
    case 'refresh':
      return packValue([Kind.refresh, frame.token]);
    case 'presence':
      return packValue([Kind.presence, frame.channel]);
    default:
      throw new TypeError(`unknown client frame type ${JSON.stringify((frame as { type: unknown }).type)}`);
  }
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
 * Reads a binary server frame from MessagePack bytes. Ids come back as canonical
 * UUID strings, bin inside data as Uint8Array; trailing unknown elements are ignored.
 * Throws a TypeError on anything that is not a well-formed server frame.
 */
export function decodeBinaryServerFrame(data: Uint8Array | ArrayBuffer): ServerFrame {
  const res = unpackValue(data, MAX_DATA_DEPTH + 2);
  if (!res.ok) fail(res.reason);
  return serverFrameOf(res.value);
}

function serverFrameOf(a: unknown): ServerFrame {
  if (!Array.isArray(a) || a.length === 0) fail('not a non-empty array');
  const [kind, channel, x, y, z] = a as unknown[];
  switch (kind) {
    case Kind.accepted:
      return { type: 'accepted', data: id(channel, 'session') };
    case Kind.subscribed:
      if (typeof y === 'number') {
        const f: ServerFrame = { type: 'subscribed', channel: str(channel, 'channel'), offset: y, epoch: str(z, 'epoch') };
        if (typeof x === 'boolean') f.recovered = x;
        return f;
      }
      if (typeof x === 'boolean') return { type: 'subscribed', channel: str(channel, 'channel'), recovered: x };
      return { type: 'subscribed', channel: str(channel, 'channel') };
    case Kind.historyAnswer: {
      if (!Array.isArray(x) || typeof y !== 'number' || typeof a[5] !== 'boolean') fail('malformed history answer');
      return { type: 'history', channel: str(channel, 'channel'), events: x.map((e) => serverFrameOf(e) as EventFrame), offset: y, epoch: str(z, 'epoch'), complete: a[5] };
    }
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
        id: id(z, 'id'),
        ...(typeof a[5] === 'number' ? { offset: a[5], epoch: str(a[6], 'epoch') } : {})
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
    case Kind.refreshed:
      // [13, exp]: the second element is the expiry (seconds) or nil, not a channel.
      if (a.length < 2 || (channel !== null && typeof channel !== 'number')) fail('exp is not a number or nil');
      return { type: 'refreshed', exp: channel as number | null };
    case Kind.presenceAnswer: {
      // [17, channel, [[session, user], …], truncated?]
      if (!Array.isArray(x)) fail('members is not an array');
      const members = (x as unknown[]).map((m) => {
        if (!Array.isArray(m) || m.length < 2) fail('a member is not a [session, user] array');
        const [s, u] = m as unknown[];
        return { session: id(s, 'session'), user: u === null ? null : str(u, 'user') };
      });
      return { type: 'presence', channel: str(channel, 'channel'), members, truncated: y === true };
    }
    default:
      return fail(`unknown kind ${String(kind)}`);
  }
}
