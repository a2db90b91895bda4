/**
 * The binary protocol, server side: one MessagePack array per WebSocket binary frame, its
 * first element the kind (`Kind` in frames.ts). See docs/protocol.md. Decoding uses the
 * strict reader (msgpack-reader.ts), encoding the plain encoder (msgpack-encoder.ts).
 */
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
import { idToBytes } from './ids.js';
import { packValue } from './msgpack-encoder.js';
import { MsgpackReader, ReadError } from './msgpack-reader.js';

const CLIENT_KINDS: Array<ClientFrame['type'] | undefined> = [];
CLIENT_KINDS[Kind.subscribe] = 'subscribe';
CLIENT_KINDS[Kind.unsubscribe] = 'unsubscribe';
CLIENT_KINDS[Kind.broadcast] = 'broadcast';
CLIENT_KINDS[Kind.refresh] = 'refresh';
CLIENT_KINDS[Kind.history] = 'history';
CLIENT_KINDS[Kind.presence] = 'presence';

function decodeClient(data: Buffer, isBinary: boolean): ClientFrame | DecodeFailure {
  if (!isBinary) return { channel: '*', errors: [DecodeReason.EXPECTED_BINARY] };
  // The frame array is depth 1, so data's own containers start at 2.
  const r = new MsgpackReader(data, MAX_DATA_DEPTH + 1);
  let channel: unknown;
  let kind: unknown;
  let third: unknown;
  let fourth: unknown;
  let fifth: unknown;
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
    if (n > 3) fourth = r.read(2);
    if (n > 4) fifth = r.read(2);
    if (n > 5) r.read(2);
    // Elements a newer client may add: checked for well-formedness, then ignored.
    for (let i = 6; i < n; i++) r.read(2);
    r.finish();
  } catch (e) {
    // A refresh's second element is its token: a credential, never echoed as a channel.
    return { channel: kind === Kind.refresh ? '*' : failureChannel(channel), errors: [e instanceof ReadError ? e.reason : DecodeReason.INVALID_MSGPACK] };
  }
  if (kind === Kind.refresh) {
    return validateClientFrame({ type: 'refresh', channel: undefined, token: channel, hasData: false, data: undefined, hasBinary: false });
  }
  return validateClientFrame({
    type: typeof kind === 'number' ? (CLIENT_KINDS[kind] ?? null) : null,
    channel,
    token: third,
    hasData: n > 2,
    data: third,
    hasBinary: r.sawBinary,
    depthChecked: true,
    // subscribe: [1, channel, token, offset, epoch]; history: [14, channel, offset, epoch, limit]
    since: kind === Kind.history ? [third, fourth] : n > 3 ? [fourth, fifth] : undefined,
    limit: kind === Kind.history ? fifth : undefined
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
      if (frame.offset !== undefined) return [Kind.subscribed, frame.channel, frame.recovered ?? null, frame.offset, frame.epoch ?? ''];
      // No position (the sequencer could not be asked): `recovered:false` still goes out.
      if (frame.recovered !== undefined) return [Kind.subscribed, frame.channel, frame.recovered];
      return [Kind.subscribed, frame.channel];
    case 'unauthorized':
    case 'unsubscribed':
      return [Kind[frame.type], frame.channel];
    case 'history':
      return [Kind.historyAnswer, frame.channel, frame.events.map(serverFrameArray), frame.offset, frame.epoch, frame.complete];
    case 'received':
      return [Kind.received, frame.channel, frame.count];
    case 'event':
      return frame.offset === undefined
        ? [Kind.event, frame.channel, frame.data === undefined ? null : frame.data, idOrNil(frame.from), idToBytes(frame.id)]
        : [Kind.event, frame.channel, frame.data === undefined ? null : frame.data, idOrNil(frame.from), idToBytes(frame.id), frame.offset, frame.epoch];
    case 'joined':
    case 'left':
      return [Kind[frame.type], frame.channel, idToBytes(frame.data.session), frame.data.user];
    case 'error':
      return [Kind.error, frame.channel, frame.errors];
    case 'refreshed':
      return [Kind.refreshed, frame.exp];
    case 'presence': {
      const members = frame.members.map((m) => [idToBytes(m.session), m.user]);
      return frame.truncated ? [Kind.presenceAnswer, frame.channel, members, true] : [Kind.presenceAnswer, frame.channel, members];
    }
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
    return packValue(serverFrameArray(frame));
  }
};
