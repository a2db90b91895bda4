import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { Placement, MAX_WAITING_SOCKETS } from '../../src/cluster/placement.js';
import type { WorkerHandle } from '../../src/cluster/worker-handle.js';

/** A worker as placement sees it: state, load, and a child that records the handed-over connections. */
function worker(key: number, state: WorkerHandle['state'] = 'ready'): WorkerHandle & { conns: number[] } {
  const conns: number[] = [];
  const child = {
    connected: true,
    send: (message: { conn: number }, _socket: Socket, cb: (err: Error | null) => void) => {
      conns.push(message.conn);
      cb(null);
      return true;
    }
  };
  return { key, state, inflight: 0, child, conns } as unknown as WorkerHandle & { conns: number[] };
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

  test('dropWaiting destroys the waiting sockets (stopping)', () => {
    const p = new Placement(() => [], () => 0);
    const s = new Socket();
    p.place(s);
    p.dropWaiting();
    assert.equal(s.destroyed, true);
  });
});
