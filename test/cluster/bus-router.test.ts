import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { BusRouter, type RouteTarget } from '../../src/cluster/bus-router.js';

class FakeWorker implements RouteTarget {
  readonly delivered: Uint8Array[] = [];
  readonly remote = new Map<string, number>();
  constructor(readonly key: number) {}
  deliver(payload: Uint8Array): void {
    this.delivered.push(payload);
  }
  setRemote(channel: string, count: number): void {
    this.remote.set(channel, count);
  }
}

const P = new Uint8Array([1, 2, 3]);

/** A router with a fake worker for each key, added in order. */
function routerWith(...keys: number[]): [BusRouter, ...FakeWorker[]] {
  const r = new BusRouter();
  const workers = keys.map((k) => new FakeWorker(k));
  for (const w of workers) r.addWorker(w);
  return [r, ...workers];
}

describe('BusRouter', () => {
  test('a message goes once to each other worker with members, never back, never to workers without members', () => {
    const r = new BusRouter();
    const [a, b, c] = [new FakeWorker(1), new FakeWorker(2), new FakeWorker(3)];
    for (const w of [a, b, c]) r.addWorker(w);
    r.setCount(1, 'news', 5);
    r.setCount(2, 'news', 1000);
    assert.equal(r.publish(1, 'news', P), 1);
    assert.deepEqual([a.delivered.length, b.delivered.length, c.delivered.length], [0, 1, 0]);
    assert.equal(b.delivered[0], P, 'the same bytes, not a copy per recipient');
    assert.equal(r.publish(3, 'news', P), 2);
    assert.equal(r.publish(null, 'news', P), 2, 'from the agent itself: every worker with members');
    assert.equal(r.publish(1, 'nobody', P), 0);
  });

  test('the work per message depends on the workers, not on the recipients', () => {
    const [r, , b] = routerWith(1, 2);
    r.setCount(2, 'big', 1_000_000);
    assert.equal(r.publish(1, 'big', P), 1);
    assert.equal(b.delivered.length, 1);
  });

  test('`*` routes by the session counts the workers report under it', () => {
    const r = new BusRouter();
    const [a, b, c] = [new FakeWorker(1), new FakeWorker(2), new FakeWorker(3)];
    for (const w of [a, b, c]) r.addWorker(w);
    r.setCount(1, '*', 3);
    r.setCount(2, '*', 2);
    assert.equal(r.publish(1, '*', P), 1);
    assert.equal(c.delivered.length, 0, 'a worker without sessions gets nothing');
  });

  test('totals count every worker; a worker is not told the other workers\' counts (its peers send them), and a dead one stops counting', () => {
    const [r, a, b] = routerWith(1, 2);
    r.setCount(1, 'x', 3);
    r.setCount(2, 'x', 4);
    assert.equal(a.remote.get('x'), undefined, 'no relay: it would lag behind the peer links');
    assert.equal(b.remote.get('x'), undefined);
    assert.equal(r.total('x'), 7);
    const c = new FakeWorker(3);
    r.addWorker(c);
    assert.equal(c.remote.get('x'), undefined);
    assert.deepEqual(r.removeWorker(2), ['x']);
    assert.equal(r.total('x'), 3);
    assert.equal(r.publish(1, 'x', P), 0);
    r.setCount(1, 'x', 0);
    assert.deepEqual(r.workersWith('x'), []);
    assert.equal(r.total('x'), 0);
  });

  test('members on other nodes (the Redis bus) are every worker\'s remote count, a new worker included', () => {
    const [r, a, b] = routerWith(1, 2);
    r.setCount(1, 'x', 2);
    r.setExternal('x', 10);
    r.setExternal('y', 4);
    assert.equal(a.remote.get('x'), 10);
    assert.equal(b.remote.get('x'), 10);
    assert.equal(b.remote.get('y'), 4);
    assert.equal(r.total('x'), 2, 'total counts this agent\'s workers only (what it reports to the other nodes)');
    const c = new FakeWorker(3);
    r.addWorker(c);
    assert.deepEqual([c.remote.get('x'), c.remote.get('y')], [10, 4]);
    assert.deepEqual(r.removeWorker(1), ['x']);
    assert.equal(c.remote.get('x'), 10);
    r.setExternal('y', 0);
    assert.equal(c.remote.get('y'), 0);
  });

  test('counts of an unknown or removed worker are ignored', () => {
    const r = new BusRouter();
    const a = new FakeWorker(1);
    r.addWorker(a);
    r.setCount(9, 'x', 5);
    assert.equal(r.total('x'), 0);
    r.removeWorker(1);
    r.setCount(1, 'x', 5);
    assert.equal(r.total('x'), 0);
  });
});
