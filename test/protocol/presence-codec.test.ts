/** The presence request and answer in both codecs: what is accepted, what is refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { jsonCodec, decodeServerFrame as decodeJson } from '../../src/protocol/json-codec.js';
import { decodeBinaryServerFrame } from '../../src/protocol/client-codec.js';
import { packValue } from '../../src/protocol/msgpack-encoder.js';
import { idToBytes } from '../../src/protocol/ids.js';
import { assertFailure, SESSION } from './helpers.js';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

test('a presence request decodes in both codecs; extra fields and elements are ignored', () => {
  assert.deepEqual(jsonCodec.decode(json({ type: 'presence', channel: 'private.x' }), false), { type: 'presence', channel: 'private.x' });
  assert.deepEqual(jsonCodec.decode(json({ type: 'presence', channel: 'news', data: 1, token: 'x' }), false), { type: 'presence', channel: 'news' });
  assert.deepEqual(binaryCodec.decode(packValue([16, 'private.x']), true), { type: 'presence', channel: 'private.x' });
  assert.deepEqual(binaryCodec.decode(packValue([16, 'news', 'later', 3]), true), { type: 'presence', channel: 'news' });
});

test('a presence request without a valid channel is refused with the usual reasons', () => {
  assertFailure(jsonCodec.decode(json({ type: 'presence' }), false), '*', ['missing channel']);
  assertFailure(jsonCodec.decode(json({ type: 'presence', channel: '*' }), false), '*', ['invalid channel']);
  assertFailure(jsonCodec.decode(json({ type: 'presence', channel: 7 }), false), '*', ['invalid channel']);
  assertFailure(binaryCodec.decode(packValue([16]), true), '*', ['missing channel']);
  assertFailure(binaryCodec.decode(packValue([16, 'bad name']), true), 'bad name', ['invalid channel']);
  // The answer's kind is the server's: a client sending it is unknown.
  assertFailure(binaryCodec.decode(packValue([17, 'news', []]), true), 'news', ['unknown message type']);
});

test('client decoders refuse malformed presence answers', () => {
  assert.throws(() => decodeJson('{"type":"presence","channel":"x","members":{}}'), TypeError);
  assert.throws(() => decodeJson('{"type":"presence","channel":"x","members":[{"session":1,"user":null}]}'), TypeError);
  assert.throws(() => decodeBinaryServerFrame(packValue([17, 'x', 'no'])), TypeError);
  assert.throws(() => decodeBinaryServerFrame(packValue([17, 'x', [[SESSION, null]]])), TypeError, 'a session is 16 bytes, not a string');
  assert.throws(() => decodeBinaryServerFrame(packValue([17, 'x', [[idToBytes(SESSION)]]])), TypeError);
  assert.deepEqual(decodeBinaryServerFrame(packValue([17, 'x', [[idToBytes(SESSION), 'alice']], false])), { type: 'presence', channel: 'x', members: [{ session: SESSION, user: 'alice' }], truncated: false });
});
