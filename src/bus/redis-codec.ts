import type { BusMessage } from './bus.js';
import { MAX_DATA_DEPTH, type ServerFrame } from '../protocol/frames.js';
import { packValue } from '../protocol/msgpack-encoder.js';
import { unpackValue } from '../protocol/msgpack-reader.js';

/**
 * The records the Redis bus publishes, as plain MessagePack.
 *
 * Channel messages: `[origin node id, exclude session id or nil, frame]`, the frame being
 * the ServerFrame without its JSON-codec hint. They are encoded once (msgpackr through the
 * binary codec's encoder) and decoded with the project's strict reader, not msgpackr's
 * unpacker, which would rename a `__proto__` key in the data (and honour msgpackr
 * extensions): Dates, binary data, NaN and `__proto__` keys come back as a local sender
 * passed them. Redis is trusted: anything that can publish on it can make every node
 * deliver events.
 *
 * Control messages: `['d', node, seq, field, value|nil, …]` (a delta of the node's hash,
 * nil = deleted field), `['s', node, seq]` (the node rewrote its whole hash: re-read it),
 * `['b', node]` (it stopped cleanly).
 */

/** A channel message read from Redis. */
export interface ChannelRecord {
  exclude: string | null;
  frame: ServerFrame & { channel: string };
  /** A sequenced event's time in the hot history (Redis clock, epoch ms). */
  at?: number;
}

/** A control message read from Redis. */
export type ControlRecord =
  | { kind: 'd'; node: string; seq: number; fields: unknown[] }
  | { kind: 's'; node: string; seq: number }
  | { kind: 'b'; node: string };

/** What a decoder gives back besides a record: sent by this node, or not a record of the bus. */
export type NotARecord = 'own' | 'malformed';

export function encodeChannelMessage(origin: string, message: BusMessage): Buffer {
  const f = message.frame;
  // The JSON codec's hint is not data: the receiver recomputes it while decoding.
  const frame = f.type === 'event' ? { type: f.type, channel: f.channel, data: f.data === undefined ? null : f.data, from: f.from, id: f.id } : f;
  return packValue([origin, message.exclude, frame]);
}

/** Decodes a channel message; `self`'s own messages (Redis sends them back) are `'own'`. */
export function decodeChannelMessage(payload: Buffer, self: string): ChannelRecord | NotARecord {
  const r = unpackValue(payload, MAX_DATA_DEPTH + 2);
  if (!r.ok || !Array.isArray(r.value) || r.value.length < 3) return 'malformed';
  const [origin, exclude, frame, offset, epoch, at] = r.value as [unknown, unknown, unknown, unknown, unknown, unknown];
  // A sequenced event (redis-log.ts) comes back to its sender too: that is how it is delivered there.
  const sequenced = typeof offset === 'number' && typeof epoch === 'string';
  if (origin === self && !sequenced) return 'own';
  if (
    frame === null ||
    typeof frame !== 'object' ||
    typeof (frame as { type?: unknown }).type !== 'string' ||
    typeof (frame as { channel?: unknown }).channel !== 'string' ||
    (exclude !== null && typeof exclude !== 'string')
  ) {
    return 'malformed';
  }
  const f = frame as ServerFrame & { channel: string };
  if (f.type === 'event') {
    f.hasBinary = r.hasBinary;
    if (sequenced) {
      f.offset = offset;
      f.epoch = epoch;
      return { exclude: exclude as string | null, frame: f, at: typeof at === 'number' ? at : undefined };
    }
  }
  return { exclude: exclude as string | null, frame: f };
}

/** A delta of `node`'s hash: `fields` are `field, value|null` pairs (null = deleted). */
export function encodeDelta(node: string, seq: number, fields: Array<string | null>): Buffer {
  return packValue(['d', node, seq, ...fields]);
}

/** `node` rewrote its whole hash (version `seq`). */
export function encodeRewrite(node: string, seq: number): Buffer {
  return packValue(['s', node, seq]);
}

/** `node` stopped cleanly. */
export function encodeBye(node: string): Buffer {
  return packValue(['b', node]);
}

/** Decodes a control message; kinds this version does not know are `null` (ignored). */
export function decodeControl(payload: Buffer, self: string): ControlRecord | NotARecord | null {
  const r = unpackValue(payload, 4);
  if (!r.ok || !Array.isArray(r.value) || typeof r.value[0] !== 'string' || typeof r.value[1] !== 'string') return 'malformed';
  const [kind, node] = r.value as [string, string, ...unknown[]];
  if (node === self) return 'own';
  if (kind === 'b') return { kind, node };
  const seq = r.value[2];
  if (typeof seq !== 'number') return 'malformed';
  if (kind === 's') return { kind, node, seq };
  if (kind === 'd') return { kind, node, seq, fields: r.value.slice(3) };
  return null;
}
