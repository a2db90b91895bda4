import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { Placement, MAX_WAITING_SOCKETS } from '../../src/cluster/placement.js';
import type { WorkerHandle } from '../../src/cluster/worker-handle.js';
import { workerShare } from '../../src/cluster/shared-accept.js';

/** A worker as placement sees it: state, load, and the connections handed over to it. */
function worker(key: number, state: WorkerHandle['state'] = 'ready'): WorkerHandle & { conns: number[] } {
  const conns: number[] = [];
  const h = {
    key,
    state,
    inflight: 0,
    child: { connected: true },
    conns,
    handOver(conn: number, _socket: Socket): void {
      conns.push(conn);
      h.inflight++;
    }
  };
  return h as unknown as WorkerHandle & { conns: number[] };
}

describe('Placement (which worker gets a connection)', () => {
  test('the ready worker with the fewest sessions plus connections not yet settled', () => {
    const a = worker(1);
    const b = worker(2);
    const starting = worker(3, 'starting');
    const sessions = new Map([[1, 2], [2, 1], [3, 0]]);
    const p = new Placement(() => [a, b, starting], (h) => sessions.get(h.key)!);
    p.place(new Socket());
    assert.deepEqual([a.conns, b.conns, starting.conns], [[], [1], []]);
    assert.equal(b.inflight, 1);
    p.place(new Socket());
    assert.deepEqual([a.conns, b.conns], [[2], [1]], 'b: 1 session + 1 in flight = 2, a: 2: the first of the least loaded');
  });

  test('with no ready worker sockets wait, paused, and go out once one is ready; beyond the bound the oldest is dropped', () => {
    const a = worker(1, 'starting');
    const p = new Placement(() => [a], () => 0);
    const sockets = Array.from({ length: MAX_WAITING_SOCKETS + 1 }, () => new Socket());
    for (const s of sockets) p.place(s);
    assert.equal(sockets[0]!.destroyed, true, 'the oldest is dropped');
    a.state = 'ready';
    p.serveWaiting();
    assert.equal(a.conns.length, MAX_WAITING_SOCKETS);
    p.dropWaiting();
  });

  test('a connection forwarded by a worker at its share (--accept shared) goes to another worker, or is refused when there is none', () => {
    const a = worker(1);
    const b = worker(2);
    const sessions = new Map([[1, 0], [2, 5]]);
    const p = new Placement(() => [a, b], (h) => sessions.get(h.key)!, { maxConnections: 100, tls: true, logger: null });
    p.place(new Socket(), a);
    assert.deepEqual([a.conns, b.conns], [[], [1]], 'not back to the forwarder, though it looks the least loaded');
    const alone = new Placement(() => [a], () => 0, { maxConnections: 100, tls: true, logger: null });
    const s = new Socket();
    alone.place(s, a);
    assert.equal(s.destroyed, true, 'refused, not held');
    assert.equal(alone.refused, 1);
  });

  test('dropWaiting destroys the waiting sockets (stopping)', () => {
    const p = new Placement(() => [], () => 0);
    const s = new Socket();
    p.place(s);
    p.dropWaiting();
    assert.equal(s.destroyed, true);
  });
});

describe('workerShare (--accept shared)', () => {
  test("the shares add up to the cap exactly, the first slots one more; 0 = no cap", () => {
    for (const [cap, workers] of [[4, 2], [5, 2], [100000, 6], [3, 4], [1, 1]] as const) {
      const shares = Array.from({ length: workers }, (_, slot) => workerShare(cap, workers, slot));
      assert.equal(shares.reduce((n, x) => n + x, 0), cap, `${cap} over ${workers}: ${shares.join()}`);
      assert.ok(Math.max(...shares) - Math.min(...shares) <= 1);
    }
    assert.deepEqual([0, 1].map((slot) => workerShare(5, 2, slot)), [3, 2]);
    assert.equal(workerShare(0, 4, 0), 0);
  });
});
