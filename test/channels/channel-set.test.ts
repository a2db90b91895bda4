import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelSet } from '../../src/channels/channel-set.js';

test('ChannelSet: one channel inline, more in a Set; add, has, delete, size and iteration agree with a Set', () => {
  const set = new ChannelSet();
  const ref = new Set<string>();
  const sorted = (xs: Iterable<string>): string[] => [...xs].sort();
  const check = (what: string): void => {
    assert.equal(set.size, ref.size, `${what}: size`);
    assert.deepEqual(sorted(set), sorted(ref), `${what}: members`);
    for (const c of ['a', 'b', 'c', 'd']) assert.equal(set.has(c), ref.has(c), `${what}: has ${c}`);
  };
  check('empty');
  const steps: Array<['add' | 'delete', string]> = [
    ['add', 'a'], ['add', 'a'], ['add', 'b'], ['add', 'c'], ['delete', 'a'], ['delete', 'a'],
    ['add', 'a'], ['delete', 'b'], ['delete', 'c'], ['delete', 'a'], ['delete', 'd'], ['add', 'd'], ['add', 'c']
  ];
  for (const [op, c] of steps) {
    const had = ref.has(c);
    if (op === 'add') {
      assert.equal(set.add(c), !had, `add ${c}`);
      ref.add(c);
    } else {
      assert.equal(set.delete(c), had, `delete ${c}`);
      ref.delete(c);
    }
    check(`${op} ${c}`);
  }
  // Walking it while deleting (the hub does, as a session leaves everything): every member is seen once.
  const seen: string[] = [];
  for (const c of set) {
    seen.push(c);
    set.delete(c);
  }
  assert.deepEqual(seen.sort(), ['c', 'd']);
  assert.equal(set.size, 0);
  assert.deepEqual(ChannelSet.of(['x', 'y', 'x']).toArray().sort(), ['x', 'y']);
  const full = ChannelSet.of(['x', 'y']);
  full.clear();
  assert.equal(full.size, 0);
  assert.equal(full.has('x'), false);
});
