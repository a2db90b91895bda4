/** `refresh` (client → server) and `refreshed` (server → client) in both codecs and the client codec. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { decodeServerFrame, encodeClientFrame } from '../../src/protocol/client-codec.js';
import { packValue } from '../../src/protocol/msgpack-encoder.js';
import { DecodeReason, MAX_TOKEN_LENGTH } from '../../src/protocol/frames.js';
import { assertFailure } from './helpers.js';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
const json = (v: unknown) => jsonCodec.decode(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)), false);
const bin = (v: unknown) => binaryCodec.decode(packValue(v), true);

test('refresh has the documented layout in both encodings', () => {
  assert.equal(encodeClientFrame('json', { type: 'refresh', token: TOKEN }), `{"type":"refresh","token":"${TOKEN}"}`);
  assert.deepEqual(encodeClientFrame('bin', { type: 'refresh', token: TOKEN }), packValue([12, TOKEN]));
  assert.deepEqual(json({ type: 'refresh', token: TOKEN }), { type: 'refresh', token: TOKEN });
  assert.deepEqual(bin([12, TOKEN]), { type: 'refresh', token: TOKEN });
  // Unknown fields and trailing elements are ignored, as for every frame.
  assert.deepEqual(json({ type: 'refresh', token: TOKEN, channel: 'news', extra: 1 }), { type: 'refresh', token: TOKEN });
  assert.deepEqual(bin([12, TOKEN, 'later']), { type: 'refresh', token: TOKEN });
});

test('a refresh token of MAX_TOKEN_LENGTH characters is accepted, one more is invalid', () => {
  const edge = 'a'.repeat(MAX_TOKEN_LENGTH);
  assert.deepEqual(json({ type: 'refresh', token: edge }), { type: 'refresh', token: edge });
  assert.deepEqual(bin([12, edge]), { type: 'refresh', token: edge });
  assertFailure(json({ type: 'refresh', token: edge + 'a' }), '*', [DecodeReason.INVALID_TOKEN]);
  assertFailure(bin([12, edge + 'a']), '*', [DecodeReason.INVALID_TOKEN]);
});

test('invalid refresh frames fail on channel * with a stable reason, never echoing the token', () => {
  const cases: Array<[unknown, unknown, string]> = [
    [{ type: 'refresh' }, [12], DecodeReason.MISSING_TOKEN],
    [{ type: 'refresh', token: null }, [12, null], DecodeReason.INVALID_TOKEN],
    [{ type: 'refresh', token: 42 }, [12, 42], DecodeReason.INVALID_TOKEN],
    [{ type: 'refresh', token: '' }, [12, ''], DecodeReason.INVALID_TOKEN],
    [{ type: 'refresh', token: [TOKEN] }, [12, [TOKEN]], DecodeReason.INVALID_TOKEN],
    [{ type: 'refresh', token: { t: TOKEN } }, [12, { t: TOKEN }], DecodeReason.INVALID_TOKEN],
    [{ type: 'refresh', channel: 'news' }, [12, undefined], DecodeReason.MISSING_TOKEN]
  ];
  for (const [j, b, reason] of cases) {
    assertFailure(json(j), '*', [reason], JSON.stringify(j));
    if (Array.isArray(b) && b[1] === undefined) assertFailure(binaryCodec.decode(packValue([12]), true), '*', [reason]);
    else assertFailure(bin(b), '*', [reason], JSON.stringify(b));
  }
  // A malformed frame after a readable token: the failure names `*`, not the token.
  const trailing = Buffer.concat([packValue([12, TOKEN]), Buffer.from([0xc0])]);
  assertFailure(binaryCodec.decode(trailing, true), '*', [DecodeReason.INVALID_MSGPACK]);
  const truncated = Buffer.concat([Buffer.from([0x93, 0x0c]), packValue(TOKEN)]);
  assertFailure(binaryCodec.decode(truncated, true), '*', [DecodeReason.INVALID_MSGPACK]);
  // `refreshed` is server-only: a client sending it is an unknown type.
  assertFailure(json({ type: 'refreshed', exp: 1 }), '*', [DecodeReason.UNKNOWN_TYPE]);
  assertFailure(bin([13, 1]), '*', [DecodeReason.UNKNOWN_TYPE]);
  assertFailure(binaryCodec.decode(Buffer.from(JSON.stringify({ type: 'refresh', token: TOKEN })), false), '*', [DecodeReason.EXPECTED_BINARY]);
});

test('refreshed carries exp in seconds, or null / nil without one', () => {
  assert.equal(jsonCodec.encode({ type: 'refreshed', exp: 1732698000 }).toString(), '{"type":"refreshed","exp":1732698000}');
  assert.equal(jsonCodec.encode({ type: 'refreshed', exp: null }).toString(), '{"type":"refreshed","exp":null}');
  assert.deepEqual(binaryCodec.encode({ type: 'refreshed', exp: 1732698000 }), packValue([13, 1732698000]));
  assert.deepEqual(binaryCodec.encode({ type: 'refreshed', exp: null }), packValue([13, null]));
  for (const exp of [1732698000, null]) {
    assert.deepEqual(decodeServerFrame('json', jsonCodec.encode({ type: 'refreshed', exp })), { type: 'refreshed', exp });
    assert.deepEqual(decodeServerFrame('bin', binaryCodec.encode({ type: 'refreshed', exp })), { type: 'refreshed', exp });
  }
});

test('the client codec refuses a malformed refreshed', () => {
  for (const text of ['{"type":"refreshed"}', '{"type":"refreshed","exp":"1"}', '{"type":"refreshed","exp":[1]}']) {
    assert.throws(() => decodeServerFrame('json', text), TypeError, text);
  }
  for (const v of [[13], [13, '1'], [13, [1]], [13, true]]) {
    assert.throws(() => decodeServerFrame('bin', packValue(v)), TypeError, JSON.stringify(v));
  }
});
