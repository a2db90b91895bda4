import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { decodeServerFrame, encodeClientFrame } from '../../src/protocol/client-codec.js';
import { isDecodeFailure, type Codec } from '../../src/protocol/codec.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { CLIENT_FRAMES, SERVER_FRAMES, withoutHint } from './helpers.js';

const codecs: Record<'json' | 'bin', Codec> = { json: jsonCodec, bin: binaryCodec };

test('each codec carries its protocol name and its frame opcode', () => {
  assert.equal(jsonCodec.name, 'json');
  assert.equal(binaryCodec.name, 'bin');
  assert.equal(jsonCodec.binary, false);
  assert.equal(binaryCodec.binary, true);
});

for (const protocol of ['json', 'bin'] as const) {
  test(`${protocol}: what a client encodes, the server codec decodes`, () => {
    const codec = codecs[protocol];
    for (const f of CLIENT_FRAMES) {
      const wire = encodeClientFrame(protocol, f);
      assert.equal(typeof wire === 'string', protocol === 'json');
      const decoded = codec.decode(Buffer.from(wire), codec.binary);
      assert.ok(!isDecodeFailure(decoded));
      assert.deepEqual(decoded, f);
    }
  });

  test(`${protocol}: what the server codec encodes, a client decodes from any input shape`, () => {
    const codec = codecs[protocol];
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
