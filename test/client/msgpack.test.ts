/** The client's MessagePack subset against the server's strict reader and encoder (both ways, byte-exact where it matters). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack, unpack, MsgpackError } from '../../src/client/msgpack.js';
import { packValue } from '../../src/protocol/msgpack-encoder.js';
import { unpackValue as readResult } from '../../src/protocol/msgpack-reader.js';

/** The server reader's value, or its failure as an exception. */
function unpackValue(bytes: Uint8Array, depth: number): unknown {
  const r = readResult(bytes, depth);
  if (!r.ok) throw new Error(`server reader: ${r.reason}`);
  return r.value;
}

const values: unknown[] = [
  null, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
  -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1,
  0.5, -1.25, 1e300, Number.MAX_VALUE,
  '', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70000), 'héllo ✓ 🎉',
  [], [1, [2, [3]]], Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 70000 }, () => 1),
  {}, { a: 1, b: { c: [true, null] } }, Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]))
];

test('every value the client packs reads back equal through the server reader, and the other way', () => {
  for (const v of values) {
    assert.deepEqual(unpackValue(pack(v), 100), v, `client → server: ${JSON.stringify(v).slice(0, 40)}`);
    assert.deepEqual(unpack(packValue(v)), v, `server → client: ${JSON.stringify(v).slice(0, 40)}`);
    assert.deepEqual(unpack(pack(v)), v);
  }
});

test('bin is Uint8Array both ways; a timestamp is a Date both ways', () => {
  const bytes = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);
  assert.deepEqual(new Uint8Array((unpackValue(pack({ b: bytes }), 10) as { b: Uint8Array }).b), bytes);
  assert.deepEqual(unpack(packValue({ b: Buffer.from(bytes) })), { b: bytes });
  for (const ms of [0, 1732694400000, 1732694400123, -1000, 253402300800000]) {
    const d = new Date(ms);
    assert.deepEqual(unpack(pack(d)), d, `own timestamp ${ms}`);
    assert.deepEqual(unpackValue(pack(d), 10), d, `server reads ${ms}`);
    assert.deepEqual(unpack(packValue(d)), d, `server's timestamp ${ms}`);
  }
});

test('the subscribe frame of docs/protocol.md is byte-exact', () => {
  assert.equal(Buffer.from(pack([1, 'chat.room1'])).toString('hex'), '9201aa636861742e726f6f6d31');
});

test('malformed input throws a MsgpackError: truncated, trailing bytes, 0xc1, unknown extension', () => {
  for (const hex of ['92', '9201aa6368', 'c0c0', 'c1', 'd40100']) {
    assert.throws(() => unpack(Buffer.from(hex, 'hex')), MsgpackError, hex);
  }
});
