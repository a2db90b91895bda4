import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToId, idToBytes, newId, uuidV7Batch } from '../../src/protocol/ids.js';

test('newId returns distinct, time-ordered UUID v7 strings', () => {
  const ids = Array.from({ length: 1000 }, () => newId());
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
});

test('newId and uuidV7Batch share one clock: interleaved ids keep increasing', () => {
  const ids: string[] = [];
  for (let i = 0; i < 3000; i++) {
    ids.push(newId());
    if (i % 100 === 0) ids.push(...uuidV7Batch(50));
  }
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(ids).size, ids.length);
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} !< ${ids[i]}`);
});

test('idToBytes and bytesToId round-trip', () => {
  for (let i = 0; i < 100; i++) {
    const id = newId();
    const b = idToBytes(id);
    assert.equal(b.length, 16);
    assert.equal(b.toString('hex'), id.replaceAll('-', ''));
    assert.equal(bytesToId(b), id);
  }
  assert.equal(bytesToId(idToBytes('0193A8C2-5F00-7A3B-8C1D-2E4F6A8B0C1D')), '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1d');
});

test('idToBytes rejects anything but a canonical UUID', () => {
  for (const bad of ['', 'x', '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1', '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1dd',
    '0193a8c25f007a3b8c1d2e4f6a8b0c1d', '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1g', '0193a8c2x5f00-7a3b-8c1d-2e4f6a8b0c1d',
    '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1\u00e9']) {
    assert.throws(() => idToBytes(bad), TypeError, bad);
  }
});

test('bytesToId rejects anything but 16 bytes', () => {
  assert.throws(() => bytesToId(new Uint8Array(15)), TypeError);
  assert.throws(() => bytesToId(new Uint8Array(17)), TypeError);
  assert.equal(bytesToId(new Uint8Array(16)), '00000000-0000-0000-0000-000000000000');
});
