import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codecFor, decodeServerFrame, encodeClientFrame, isDecodeFailure, binaryCodec, jsonCodec } from '../../src/protocol/index.js';
import { CLIENT_FRAMES, SERVER_FRAMES, withoutHint } from './helpers.js';

test('codecFor picks the codec by protocol name', () => {
  assert.equal(codecFor('json'), jsonCodec);
  assert.equal(codecFor('bin'), binaryCodec);
  assert.equal(codecFor('json').binary, false);
  assert.equal(codecFor('bin').binary, true);
});

for (const protocol of ['json', 'bin'] as const) {
  test(`${protocol}: what a client encodes, the server codec decodes`, () => {
    const codec = codecFor(protocol);
    for (const f of CLIENT_FRAMES) {
      const wire = encodeClientFrame(protocol, f);
      assert.equal(typeof wire === 'string', protocol === 'json');
      const decoded = codec.decode(Buffer.from(wire), codec.binary);
      assert.ok(!isDecodeFailure(decoded));
      assert.deepEqual(decoded, f);
    }
  });

  test(`${protocol}: what the server codec encodes, a client decodes from any input shape`, () => {
    const codec = codecFor(protocol);
    for (const f of SERVER_FRAMES) {
      const bytes = codec.encode(f);
      const arrayBuffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      assert.deepEqual(decodeServerFrame(protocol, bytes), withoutHint(f));
      assert.deepEqual(decodeServerFrame(protocol, new Uint8Array(bytes)), withoutHint(f));
      assert.deepEqual(decodeServerFrame(protocol, arrayBuffer as ArrayBuffer), withoutHint(f));
      if (protocol === 'json') assert.deepEqual(decodeServerFrame(protocol, bytes.toString('utf8')), withoutHint(f));
    }
  });
}

test('a text frame on a binary client is an error', () => {
  assert.throws(() => decodeServerFrame('bin', '{"type":"accepted"}'), TypeError);
});
