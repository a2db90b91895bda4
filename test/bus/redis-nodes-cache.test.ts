import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { NodesCache } from '../../src/bus/redis-nodes-cache.js';

/** A cache whose hash reads the test answers by hand, and the count changes it reported. */
function harness() {
  const reads: Array<{ id: string; answer: (hash: Record<string, string>) => Promise<void>; fail: () => Promise<void> }> = [];
  const changes: Array<[string, number]> = [];
  const cache = new NodesCache(
    (id) =>
      new Promise((resolve, reject) => {
        // Answering settles the read, then lets every continuation of the cache run (one macrotask turn).
        const settle = async (f: () => void): Promise<void> => {
          f();
          await new Promise((r) => setImmediate(r));
        };
        reads.push({ id, answer: (hash) => settle(() => resolve(hash)), fail: () => settle(() => reject(new Error('lost'))) });
      }),
    (channel, total) => changes.push([channel, total])
  );
  return { cache, reads, changes };
}

describe('NodesCache: the other nodes as last seen, without Redis', () => {
  test('deltas in order sum the counts of every node; each change is reported with the new total', () => {
    const { cache, reads, changes } = harness();
    cache.delta('a', 1, ['c:news', '3']);
    cache.delta('b', 1, ['c:news', '2', 'c:sport', '1']);
    assert.equal(cache.count('news'), 5);
    assert.equal(cache.count('sport'), 1);
    assert.equal(cache.count('none'), 0);
    cache.delta('a', 2, ['c:news', null]);
    assert.equal(cache.count('news'), 2);
    assert.deepEqual(changes, [['news', 3], ['news', 5], ['sport', 1], ['news', 2]]);
    assert.deepEqual(cache.ids().sort(), ['a', 'b']);
    assert.equal(reads.length, 0, 'no gap, nothing to re-read');
  });

  test('an old or repeated delta is ignored; a bad count counts as 0; malformed pairs are skipped', () => {
    const { cache, changes } = harness();
    cache.delta('a', 1, ['c:x', '4']);
    cache.delta('a', 1, ['c:x', '9']);
    cache.delta('a', 0, ['c:x', '9']);
    assert.equal(cache.count('x'), 4);
    cache.delta('a', 2, ['c:x', 'lots', 7, 'c:y', 'c:z', '2']);
    assert.equal(cache.count('x'), 0);
    assert.equal(cache.count('z'), 2);
    assert.deepEqual(changes, [['x', 4], ['x', 0], ['z', 2]]);
  });

  test('a gap in seq re-reads the hash, and deltas arriving meanwhile are applied on top', async () => {
    const { cache, reads } = harness();
    cache.delta('a', 1, ['c:x', '1']);
    cache.delta('a', 3, ['c:x', '3']);
    assert.equal(reads.length, 1, 'seq 2 was missed');
    assert.equal(reads[0]!.id, 'a');
    assert.equal(cache.count('x'), 3, 'applied at once, corrected by the read');
    cache.delta('a', 4, ['c:y', '7']);
    await reads[0]!.answer({ seq: '3', 'c:x': '2', 'c:w': '5' });
    assert.equal(cache.count('x'), 2, 'from the hash');
    assert.equal(cache.count('w'), 5);
    assert.equal(cache.count('y'), 7, 'the delta newer than the hash');
    assert.equal(cache.behind('a', 4), false);
    assert.equal(cache.behind('a', 5), true);
    assert.equal(reads.length, 1);
  });

  test('a rewrite while a read is in flight reads again once it is done', async () => {
    const { cache, reads } = harness();
    cache.rewritten('a', 1);
    assert.equal(reads.length, 1);
    cache.rewritten('a', 2);
    assert.equal(reads.length, 1, 'one read at a time');
    await reads[0]!.answer({ seq: '1', 'c:x': '1' });
    assert.equal(reads.length, 2, 'the first read may predate the rewrite');
    await reads[1]!.answer({ seq: '2', 'c:x': '6' });
    assert.equal(cache.count('x'), 6);
    cache.rewritten('a', 2);
    assert.equal(reads.length, 2, 'not newer than the cache: no read');
  });

  test('a node whose hash is gone is forgotten when it was never read; a failed read changes nothing', async () => {
    const { cache, reads } = harness();
    void cache.fetch('ghost');
    await reads[0]!.answer({});
    assert.deepEqual(cache.ids(), []);
    cache.delta('a', 1, ['c:x', '1']);
    void cache.fetch('a');
    await reads[1]!.fail();
    assert.equal(cache.count('x'), 1);
    assert.deepEqual(cache.ids(), ['a']);
  });

  test('private-channel members follow the deltas; drop returns them and zeroes the counts', () => {
    const { cache, changes } = harness();
    cache.delta('a', 1, ['c:private.p', '2', 'm:private.p s1', '"ann"', 'm:private.p s2', 'null', 'm:private.q s3', '{bad']);
    cache.delta('a', 2, ['m:private.p s2', null, 'm:private.q s3', null]);
    cache.delta('b', 1, ['c:private.p', '1']);
    const members = cache.drop('a');
    assert.deepEqual(members, new Map([['private.p', new Map([['s1', 'ann']])]]));
    assert.equal(cache.count('private.p'), 1, 'b is still there');
    assert.deepEqual(changes.slice(-1), [['private.p', 1]]);
    assert.deepEqual(cache.ids(), ['b']);
    assert.equal(cache.drop('a'), undefined, 'unknown now');
  });

  test('a read that ends after drop or close is not applied', async () => {
    const { cache, reads } = harness();
    cache.rewritten('a', 1);
    cache.drop('a');
    await reads[0]!.answer({ seq: '1', 'c:x': '1' });
    assert.equal(cache.count('x'), 0);
    cache.rewritten('b', 1);
    cache.close();
    await reads[1]!.answer({ seq: '1', 'c:x': '1' });
    assert.equal(cache.count('x'), 0);
  });
});
