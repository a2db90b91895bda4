/**
 * The client library's view of the wire (docs/protocol.md): what it sends, encoded for
 * either protocol, and what the server sends, decoded from either into one shape.
 * Fields a newer server adds are ignored; fields an older server lacks are undefined.
 */
import { pack, unpack } from './msgpack.js';

/** The two encodings: `json` (text frames) and `bin` (MessagePack binary frames). */
export type Protocol = 'json' | 'bin';

/** A channel position: the offset of an event and the epoch of the channel's sequence. */
export interface Position {
  offset: number;
  epoch: string;
}

/** One event of a channel, live or replayed. */
export interface ChannelEvent {
  channel: string;
  data: unknown;
  /** The sending session, or null when sent through the HTTP API. */
  from: string | null;
  /** The message id (UUID). */
  id: string;
  /** The event's position in its channel (absent on `*` and on servers without positions). */
  offset?: number;
  epoch?: string;
}

/** A member of a channel, in `joined`, `left` and presence answers. */
export interface Member {
  session: string;
  user: string | null;
}

/** What the client sends. */
export type OutFrame =
  | { type: 'subscribe'; channel: string; token?: string; since?: Position }
  | { type: 'unsubscribe'; channel: string }
  | { type: 'broadcast'; channel: string; data: unknown }
  | { type: 'refresh'; token: string }
  | { type: 'history'; channel: string; since?: Position; limit?: number }
  | { type: 'presence'; channel: string };

/** What the server sends, decoded. */
export type InFrame =
  | { type: 'accepted'; session: string }
  | { type: 'subscribed'; channel: string; recovered?: boolean; offset?: number; epoch?: string }
  | { type: 'unauthorized' | 'unsubscribed'; channel: string }
  | { type: 'received'; channel: string; count: number }
  | ({ type: 'event' } & ChannelEvent)
  | { type: 'joined' | 'left'; channel: string; member: Member }
  | { type: 'error'; channel: string; errors: string[] }
  | { type: 'refreshed'; exp: number | null }
  | { type: 'history'; channel: string; events: ChannelEvent[]; offset?: number; epoch?: string; complete: boolean }
  | { type: 'presence'; channel: string; members: Member[]; truncated: boolean }
  | { type: 'unknown' };

const KIND = { subscribe: 1, unsubscribe: 4, broadcast: 6, refresh: 12, history: 14, presence: 16 } as const;

/** A frame ready for `WebSocket.send`. */
export function encodeFrame(protocol: Protocol, f: OutFrame): string | Uint8Array {
  if (protocol === 'json') return JSON.stringify(f);
  switch (f.type) {
    case 'subscribe':
      return pack(f.since ? [KIND.subscribe, f.channel, f.token ?? null, f.since.offset, f.since.epoch] : f.token !== undefined ? [KIND.subscribe, f.channel, f.token] : [KIND.subscribe, f.channel]);
    case 'unsubscribe':
    case 'presence':
      return pack([KIND[f.type], f.channel]);
    case 'broadcast':
      return pack([KIND.broadcast, f.channel, f.data]);
    case 'refresh':
      return pack([KIND.refresh, f.token]);
    case 'history':
      return pack([KIND.history, f.channel, f.since?.offset ?? null, f.since?.epoch ?? null, f.limit ?? null]);
  }
}

/** A UUID string from 16 bytes (binary frames), or the string as it came (JSON frames). */
function id(v: unknown): string {
  if (!(v instanceof Uint8Array)) return String(v);
  let h = '';
  for (const b of v) h += (b < 16 ? '0' : '') + b.toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
const optId = (v: unknown): string | null => (v === null || v === undefined ? null : id(v));
const optNum = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const optStr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

type Obj = Record<string, unknown>;

function jsonEvent(o: Obj): ChannelEvent {
  const e: ChannelEvent = { channel: String(o.channel), data: o.data, from: optId(o.from), id: id(o.id) };
  if (typeof o.offset === 'number') e.offset = o.offset;
  if (typeof o.epoch === 'string') e.epoch = o.epoch;
  return e;
}
function binEvent(a: unknown[]): ChannelEvent {
  const e: ChannelEvent = { channel: String(a[1]), data: a[2], from: optId(a[3]), id: id(a[4]) };
  if (typeof a[5] === 'number') e.offset = a[5];
  if (typeof a[6] === 'string') e.epoch = a[6];
  return e;
}
function jsonMember(v: unknown): Member {
  const o = (v ?? {}) as Obj;
  return { session: id(o.session), user: (o.user as string | null | undefined) ?? null };
}

/** Decodes what the socket delivered (a string, or an ArrayBuffer/Uint8Array). Throws on a malformed frame. */
export function decodeFrame(data: unknown): InFrame {
  if (typeof data === 'string') return decodeJson(JSON.parse(data) as Obj);
  if (data instanceof ArrayBuffer || data instanceof Uint8Array) return decodeBin(unpack(data));
  throw new TypeError('unexpected frame payload');
}

function decodeJson(o: Obj): InFrame {
  const channel = String(o.channel);
  switch (o.type) {
    case 'accepted':
      return { type: 'accepted', session: String(o.data) };
    case 'subscribed': {
      const f: InFrame = { type: 'subscribed', channel };
      if (typeof o.recovered === 'boolean') f.recovered = o.recovered;
      if (typeof o.offset === 'number') f.offset = o.offset;
      if (typeof o.epoch === 'string') f.epoch = o.epoch;
      return f;
    }
    case 'unauthorized':
    case 'unsubscribed':
      return { type: o.type, channel };
    case 'received':
      return { type: 'received', channel, count: Number(o.count) };
    case 'event':
      return { type: 'event', ...jsonEvent(o) };
    case 'joined':
    case 'left':
      return { type: o.type, channel, member: jsonMember(o.data) };
    case 'error':
      return { type: 'error', channel, errors: Array.isArray(o.errors) ? o.errors.map(String) : [] };
    case 'refreshed':
      return { type: 'refreshed', exp: optNum(o.exp) ?? null };
    case 'history':
      return {
        type: 'history',
        channel,
        events: Array.isArray(o.events) ? o.events.map((e) => jsonEvent(e as Obj)) : [],
        offset: optNum(o.offset),
        epoch: optStr(o.epoch),
        complete: o.complete !== false
      };
    case 'presence':
      return { type: 'presence', channel, members: Array.isArray(o.members) ? o.members.map(jsonMember) : [], truncated: o.truncated === true };
  }
  return { type: 'unknown' };
}

function decodeBin(v: unknown): InFrame {
  if (!Array.isArray(v)) throw new TypeError('binary frame is not an array');
  const channel = String(v[1]);
  switch (v[0]) {
    case 0:
      return { type: 'accepted', session: id(v[1]) };
    case 2: {
      const f: InFrame = { type: 'subscribed', channel };
      if (typeof v[2] === 'boolean') f.recovered = v[2];
      if (typeof v[3] === 'number') f.offset = v[3];
      if (typeof v[4] === 'string') f.epoch = v[4];
      return f;
    }
    case 3:
      return { type: 'unauthorized', channel };
    case 5:
      return { type: 'unsubscribed', channel };
    case 7:
      return { type: 'received', channel, count: Number(v[2]) };
    case 8:
      return { type: 'event', ...binEvent(v) };
    case 9:
    case 10:
      return { type: v[0] === 9 ? 'joined' : 'left', channel, member: { session: id(v[2]), user: (v[3] as string | null | undefined) ?? null } };
    case 11:
      return { type: 'error', channel, errors: Array.isArray(v[2]) ? v[2].map(String) : [] };
    case 13:
      return { type: 'refreshed', exp: optNum(v[1]) ?? null };
    case 15:
      return {
        type: 'history',
        channel,
        events: Array.isArray(v[2]) ? v[2].map((e) => binEvent(e as unknown[])) : [],
        offset: optNum(v[3]),
        epoch: optStr(v[4]),
        complete: v[5] !== false
      };
    case 17:
      return {
        type: 'presence',
        channel,
        members: Array.isArray(v[2]) ? v[2].map((m) => ({ session: id((m as unknown[])[0]), user: ((m as unknown[])[1] as string | null | undefined) ?? null })) : [],
        truncated: v[3] === true
      };
  }
  return { type: 'unknown' };
}
