import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, BACKOFF_DEFAULTS } from '../../src/client/backoff.js';

test('full jitter: attempt n waits in [0, min(cap, base·2^n)), using the whole range', () => {
  const o = { baseMs: 100, capMs: 5000 };
  for (let n = 0; n < 12; n++) {
    const ceiling = Math.min(5000, 100 * 2 ** n);
    assert.equal(backoffDelay(n, o, () => 0), 0, `attempt ${n} at random 0`);
    assert.equal(backoffDelay(n, o, () => 0.999999), Math.floor(0.999999 * ceiling), `attempt ${n} near the top`);
    assert.equal(backoffDelay(n, o, () => 0.5), Math.floor(ceiling / 2));
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(n, o);
      assert.ok(d >= 0 && d < ceiling, `attempt ${n}: ${d} within [0, ${ceiling})`);
    }
  }
});

test('the cap holds for huge attempt counts (no overflow to NaN or Infinity)', () => {
  assert.equal(backoffDelay(5000, {}, () => 0.5), BACKOFF_DEFAULTS.capMs / 2);
  assert.equal(backoffDelay(0, {}, () => 0.5), BACKOFF_DEFAULTS.baseMs / 2);
});

test('delays are spread: 1000 draws of one attempt are not all alike', () => {
  const draws = new Set<number>();
  for (let i = 0; i < 1000; i++) draws.add(backoffDelay(6, { baseMs: 500, capMs: 30000 }));
  assert.ok(draws.size > 500, `${draws.size} distinct delays`);
});
