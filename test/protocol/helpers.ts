/** Shared fixtures for the protocol tests. */
import assert from 'node:assert/strict';
import { isDecodeFailure } from '../../src/protocol/codec.js';
import {
  ALL_CHANNEL,
  CHANNEL_RE,
  DecodeReason,
  MAX_CHANNEL_LENGTH,
  MAX_TOKEN_LENGTH,
  type ClientFrame,
  type DecodeFailure,
  type ServerFrame
} from '../../src/protocol/frames.js';

export const SESSION = '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1d';
export const OTHER = '0193a8c2-5f01-7b4c-9d2e-3f5a7b9c1d2e';
export const EVENT_ID = '0193a8c2-6000-7000-8000-00000000002a';

/** One of every server frame. */
export const SERVER_FRAMES: ServerFrame[] = [
  { type: 'accepted', data: SESSION },
  { type: 'subscribed', channel: 'news' },
  { type: 'unauthorized', channel: 'private.ops' },
  { type: 'unsubscribed', channel: 'news' },
  { type: 'received', channel: 'news', count: 3 },
  { type: 'received', channel: '*', count: 0 },
  { type: 'event', channel: 'news', data: { text: 'hi', n: [1, 2.5, -3, null, true, false, 'é😀'] }, from: OTHER, id: EVENT_ID },
  { type: 'event', channel: 'prices.crypto', data: null, from: null, id: EVENT_ID },
  { type: 'event', channel: 'x', data: 'plain string', from: null, id: EVENT_ID },
  { type: 'event', channel: 'x', data: 2 ** 40 + 1, from: SESSION, id: EVENT_ID },
  { type: 'joined', channel: 'chat.room1', data: { session: OTHER, user: 'bob' } },
  { type: 'joined', channel: 'chat.room1', data: { session: OTHER, user: null } },
  { type: 'left', channel: 'chat.room1', data: { session: OTHER, user: 'bob' } },
  { type: 'error', channel: '*', errors: ['invalid json'] },
  { type: 'error', channel: 'bad "quoted" \\ channel', errors: ['invalid channel', 'missing data'] },
  { type: 'refreshed', exp: 1732694400 },
  { type: 'refreshed', exp: null },
  { type: 'presence', channel: 'private.x', members: [{ session: SESSION, user: 'alice' }, { session: OTHER, user: null }], truncated: false },
  { type: 'presence', channel: 'news', members: [], truncated: true }
];

/** One of every client frame, as the decoders return them. */
export const CLIENT_FRAMES: ClientFrame[] = [
  { type: 'subscribe', channel: 'news' },
  { type: 'subscribe', channel: 'private.ops', token: 'a3f1c2' },
  { type: 'unsubscribe', channel: 'news' },
  { type: 'broadcast', channel: 'news', data: { text: 'hello', list: [1, 'two', null, { deep: [true] }] }, hasBinary: false },
  { type: 'broadcast', channel: '*', data: 'to everyone', hasBinary: false },
  { type: 'broadcast', channel: 'A-Za-z0-9_-.:@=,;', data: null, hasBinary: false },
  { type: 'broadcast', channel: 'c'.repeat(200), data: [], hasBinary: false },
  { type: 'broadcast', channel: 'n', data: -12.75, hasBinary: false },
  { type: 'refresh', token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln' },
  { type: 'presence', channel: 'private.x' }
];

/** The event frame a server would build from a decoded broadcast. */
export function eventFrom(frame: ClientFrame & { type: 'broadcast' }): ServerFrame {
  return { type: 'event', channel: frame.channel, data: frame.data, from: SESSION, id: EVENT_ID, hasBinary: frame.hasBinary };
}

/** Strips the never-on-the-wire hint so frames compare with what a client decodes. */
export function withoutHint(frame: ServerFrame): ServerFrame {
  if (frame.type !== 'event' || !('hasBinary' in frame)) return frame;
  const { hasBinary: _hint, ...rest } = frame;
  return rest;
}

export function assertFailure(result: ClientFrame | DecodeFailure, channel: string, errors: string[], msg?: string): void {
  assert.ok(isDecodeFailure(result), `${msg ?? ''} expected a failure, got ${JSON.stringify(result)}`);
  assert.deepEqual(result, { channel, errors }, msg);
}

const REASONS = new Set<string>(Object.values(DecodeReason));

/** The invariants every decode result keeps, whatever the input. */
export function assertWellFormed(result: ClientFrame | DecodeFailure, input: Uint8Array): void {
  const where = () => `input ${Buffer.from(input).toString('hex').slice(0, 200)} → ${safeJson(result)}`;
  if (isDecodeFailure(result)) {
    if (typeof result.channel !== 'string' || result.channel.length > MAX_CHANNEL_LENGTH) assert.fail(`bad failure channel: ${where()}`);
    if (!Array.isArray(result.errors) || result.errors.length === 0) assert.fail(`empty errors: ${where()}`);
    for (const e of result.errors) if (!REASONS.has(e)) assert.fail(`unknown reason ${e}: ${where()}`);
    return;
  }
  if (result.type === 'refresh') {
    if (typeof result.token !== 'string' || result.token.length === 0 || result.token.length > MAX_TOKEN_LENGTH) assert.fail(`bad refresh token: ${where()}`);
    return;
  }
  const ok = CHANNEL_RE.test(result.channel) || (result.type === 'broadcast' && result.channel === ALL_CHANNEL);
  if (!ok) assert.fail(`accepted a bad channel: ${where()}`);
  if (result.type === 'subscribe' && result.token !== undefined && typeof result.token !== 'string') assert.fail(`bad token: ${where()}`);
  if (result.type === 'broadcast' && !('data' in result)) assert.fail(`broadcast without data: ${where()}`);
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 200) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Nested arrays `depth` deep around `inner` (depth 0 is `inner` itself). */
export function nest(depth: number, inner: unknown = 1): unknown {
  let v: unknown = inner;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** The decoded broadcast, or a test failure. */
export function expectBroadcast(r: ClientFrame | DecodeFailure): ClientFrame & { type: 'broadcast' } {
  if (isDecodeFailure(r) || r.type !== 'broadcast') assert.fail(`expected a broadcast, got ${safeJson(r)}`);
  return r;
}
