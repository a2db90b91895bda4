import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/process.js';

interface Point {
  at: number;
  value: number;
}
interface CounterHistory {
  add(at: number, values: Record<string, number>): void;
  rates(name: string, spanMs?: number): Point[];
  series(name: string): Point[];
  lastRate(name: string): number | null;
}

// The dashboard's own module, as the browser loads it (plain JS, no build step).
const { CounterHistory } = (await import(pathToFileURL(join(ROOT, 'admin', 'rates.js')).href)) as { CounterHistory: new (windowMs: number) => CounterHistory };

describe('the dashboard rates (admin/rates.js)', () => {
  test('a rate per second between neighbouring samples', () => {
    const h = new CounterHistory(60_000);
    assert.equal(h.lastRate('out'), null);
    h.add(1000, { out: 10 });
    h.add(3000, { out: 30 });
    h.add(4000, { out: 35 });
    assert.deepEqual(h.rates('out'), [{ at: 3000, value: 10 }, { at: 4000, value: 5 }]);
    assert.equal(h.lastRate('out'), 5);
  });

  test('over a span: the rate from the latest sample at least that old', () => {
    const h = new CounterHistory(60_000);
    // Counters that step once every two polls: 0, 0, 10, 10, 20.
    for (const [at, out] of [[0, 0], [1000, 0], [2000, 10], [3000, 10], [4000, 20]] as const) h.add(at, { out });
    assert.deepEqual(h.rates('out').map((p) => p.value), [0, 10, 0, 10], 'neighbours: a sawtooth');
    assert.deepEqual(h.rates('out', 2000).map((p) => p.value), [0, 5, 5, 5], 'over 2 s: steady');
    // A restart inside the span: the span starts after it.
    h.add(5000, { out: 2 });
    h.add(6000, { out: 6 });
    assert.deepEqual(h.rates('out', 3000).slice(-1), [{ at: 6000, value: 4 }]);
  });

  test('a counter that went down (a restart) gives no rate, not a negative one; old samples fall off', () => {
    const h = new CounterHistory(5000);
    h.add(1000, { out: 100, open: 2 });
    h.add(2000, { out: 3, open: 1 });
    h.add(3000, { out: 5, open: 1 });
    assert.deepEqual(h.rates('out'), [{ at: 3000, value: 2 }]);
    h.add(2500, { out: 999 }); // out of order: ignored
    h.add(7000, { out: 9, open: 0 });
    assert.deepEqual(h.series('open').map((p) => p.at), [2000, 3000, 7000]);
  });
});
