/**
 * The size corpus: a short, plausible transcript of what one session receives (connect,
 * subscribe to a chat room and a price feed, members coming and going, chat messages,
 * price ticks, one error). The protocol tests assert the binary protocol's share of the
 * JSON size on it, and the benchmark prints the same figure. docs/protocol.md quotes it.
 */
import { binaryCodec } from '../src/protocol/binary-codec.js';
import type { ServerFrame } from '../src/protocol/frames.js';
import { jsonCodec } from '../src/protocol/json-codec.js';

const ALICE = '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1d';
const BOB = '0193a8c2-5f01-7b4c-9d2e-3f5a7b9c1d2e';
const CAROL = '0193a8c2-5f02-7c5d-ae3f-4a6b8c0d2e3f';
const eventId = (n: number): string => `0193a8c2-6000-7000-8000-${n.toString(16).padStart(12, '0')}`;

const CHAT: Array<[string, string, string]> = [
  [BOB, 'bob', 'hello there, how are you?'],
  [ALICE, 'alice', 'fine, thanks! and you?'],
  [BOB, 'bob', 'good. did you see the release notes?'],
  [CAROL, 'carol', 'hi all'],
  [ALICE, 'alice', 'yes, the binary protocol looks nice'],
  [BOB, 'bob', 'ok'],
  [CAROL, 'carol', 'meeting at 3pm?'],
  [ALICE, 'alice', 'works for me 👍']
];

const TICKS: Array<[string, number]> = [
  ['BTC-USD', 43250.5], ['ETH-USD', 2281.17], ['BTC-USD', 43251], ['SOL-USD', 58.42],
  ['BTC-USD', 43249.75], ['ETH-USD', 2281.05], ['BTC-USD', 43252.25], ['SOL-USD', 58.4],
  ['BTC-USD', 43250], ['ETH-USD', 2280.9], ['BTC-USD', 43248.5], ['SOL-USD', 58.45],
  ['BTC-USD', 43247.25], ['ETH-USD', 2281.3], ['BTC-USD', 43249], ['SOL-USD', 58.47]
];

/** The corpus, in the order a session would receive it. Ids are fixed so sizes are stable. */
export const SIZE_CORPUS: readonly ServerFrame[] = [
  { type: 'accepted', data: ALICE },
  { type: 'subscribed', channel: 'chat.room1' },
  { type: 'subscribed', channel: 'prices.crypto' },
  { type: 'joined', channel: 'chat.room1', data: { session: BOB, user: 'bob' } },
  { type: 'joined', channel: 'chat.room1', data: { session: CAROL, user: 'carol' } },
  ...CHAT.map(([from, user, text], i): ServerFrame =>
    from === ALICE
      ? { type: 'received', channel: 'chat.room1', count: 2 }
      : { type: 'event', channel: 'chat.room1', data: { user, text }, from, id: eventId(i), hasBinary: false }
  ),
  ...TICKS.map(([symbol, price], i): ServerFrame => ({
    type: 'event',
    channel: 'prices.crypto',
    data: { symbol, price, ts: 1732694400000 + i * 250 },
    from: null,
    id: eventId(100 + i),
    hasBinary: false
  })),
  { type: 'left', channel: 'chat.room1', data: { session: CAROL, user: 'carol' } },
  { type: 'error', channel: 'private.ops', errors: ['invalid token'] }
];

/** Sizes of one group of corpus frames (e.g. every `event` on `prices.crypto`). */
export interface SizeRow {
  /** `type`, or `event channel` for events. */
  name: string;
  frames: number;
  jsonBytes: number;
  binBytes: number;
}

/** The corpus encoded both ways. */
export interface SizeReport {
  rows: SizeRow[];
  jsonBytes: number;
  binBytes: number;
  /** binBytes / jsonBytes. */
  ratio: number;
}

/** Encodes the corpus (or `frames`) with both codecs and sums the payload sizes. */
export function measureSizeRatio(frames: readonly ServerFrame[] = SIZE_CORPUS): SizeReport {
  const rows = new Map<string, SizeRow>();
  let jsonBytes = 0;
  let binBytes = 0;
  for (const f of frames) {
    const name = f.type === 'event' ? `event ${f.channel}` : f.type;
    const j = jsonCodec.encode(f).length;
    const b = binaryCodec.encode(f).length;
    let row = rows.get(name);
    if (!row) rows.set(name, (row = { name, frames: 0, jsonBytes: 0, binBytes: 0 }));
    row.frames++;
    row.jsonBytes += j;
    row.binBytes += b;
    jsonBytes += j;
    binBytes += b;
  }
  return { rows: [...rows.values()], jsonBytes, binBytes, ratio: binBytes / jsonBytes };
}
