import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePayload, encodePayload, payloadJsonView } from '../../src/audit/audit-payload.js';

test('plain JSON data is stored as its JSON text, with no MessagePack copy', () => {
  for (const v of [{ text: 'hi', n: [1, 2.5, true, null] }, 'a string', 42, false, [], {}]) {
    const e = encodePayload(v);
    assert.equal(e.json, JSON.stringify(v));
    assert.equal(e.bin, null);
    assert.deepEqual(decodePayload(e.json, e.bin), v);
  }
});

test('no payload is SQL NULL in both columns', () => {
  assert.deepEqual(encodePayload(null), { json: null, bin: null });
  assert.deepEqual(encodePayload(undefined), { json: null, bin: null });
  assert.equal(decodePayload(null, null), null);
});

test('binary values: base64 in the JSON (as JSON clients see them), exact bytes through MessagePack', () => {
  const v = { img: new Uint8Array([0, 1, 2, 255]), nested: [{ b: Buffer.from('zen') }] };
  const e = encodePayload(v);
  assert.deepEqual(JSON.parse(e.json!), { img: 'AAEC/w==', nested: [{ b: 'emVu' }] });
  assert.ok(e.bin);
  const back = decodePayload(e.json, e.bin) as { img: Uint8Array; nested: Array<{ b: Uint8Array }> };
  assert.deepEqual([...back.img], [0, 1, 2, 255]);
  assert.equal(Buffer.from(back.nested[0]!.b).toString(), 'zen');
  assert.deepEqual(payloadJsonView(e.json), { img: 'AAEC/w==', nested: [{ b: 'emVu' }] });
});

test('NUL characters and lone surrogates (refused by jsonb) become U+FFFD in the JSON; the exact string survives', () => {
  const v = { a: 'x\u0000y', b: 'lone \ud800 high', c: 'pair 😀 ok', d: 'escaped \\u0000 text' };
  const e = encodePayload(v);
  const json = JSON.parse(e.json!) as Record<string, string>;
  assert.equal(json.a, 'x\ufffdy');
  assert.equal(json.b, 'lone \ufffd high');
  assert.equal(json.c, 'pair 😀 ok');
  assert.equal(json.d, 'escaped \\u0000 text');
  assert.ok(e.bin);
  assert.equal((decodePayload(e.json, e.bin) as Record<string, string>).a, 'x\u0000y');
});

test('an escaped backslash before "u0000" is not taken for a NUL', () => {
  const e = encodePayload('a\\u0000b');
  assert.equal(e.bin, null);
  assert.equal(JSON.parse(e.json!), 'a\\u0000b');
});

test('dates, BigInts and non-finite numbers are not exact JSON: kept through MessagePack', () => {
  const at = new Date('2026-01-02T03:04:05.678Z');
  const e = encodePayload({ at, big: 12n, inf: Infinity });
  assert.deepEqual(JSON.parse(e.json!), { at: at.toISOString(), big: 12, inf: null });
  const back = decodePayload(e.json, e.bin) as { at: Date; big: number; inf: number };
  assert.equal(back.at.getTime(), at.getTime());
  assert.equal(back.big, 12);
  assert.equal(back.inf, Infinity);
});
