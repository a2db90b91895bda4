import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { WorkerHandle, MAX_UNSENT_TO_WORKER_BATCHES } from '../../src/cluster/worker-handle.js';
import type { AgentMessage } from '../../src/cluster/ipc-messages.js';

/** A child process that records what it is sent; `hold` keeps the send callbacks pending. */
function child(): ChildProcess & { sent: AgentMessage[]; hold: boolean } {
  const c = {
    connected: true,
    hold: false,
    sent: [] as AgentMessage[],
    send(message: AgentMessage, cb?: (err: Error | null) => void) {
      c.sent.push(message);
      if (!c.hold) cb?.(null);
      return true;
    }
  };
  return c as unknown as ChildProcess & { sent: AgentMessage[]; hold: boolean };
}

describe('WorkerHandle (one worker as the agent drives it)', () => {
  test('remote counts lead its batch, then the items in order', () => {
    const c = child();
    const h = new WorkerHandle(1, 0, c, () => undefined);
    h.deliver(new Uint8Array([1]));
    h.setRemote('x', 2);
    h.push({ t: 'drain' });
    h.setRemote('x', 3);
    h.batcher.flush();
    assert.deepEqual(c.sent, [{ t: 'batch', items: [{ t: 'remote', channel: 'x', count: 3 }, { t: 'deliver', payload: new Uint8Array([1]) }, { t: 'drain' }] }]);
  });

  test('deliveries are dropped once MAX_UNSENT_TO_WORKER_BATCHES batches wait for its pipe; control items never', () => {
    const c = child();
    c.hold = true;
    const h = new WorkerHandle(1, 0, c, () => undefined);
    for (let i = 0; i < MAX_UNSENT_TO_WORKER_BATCHES; i++) {
      h.deliver(new Uint8Array([1]));
      h.batcher.flush();
    }
    h.deliver(new Uint8Array([2]));
    assert.equal(h.dropped, 1);
    h.push({ t: 'drain' });
    h.batcher.flush();
    assert.deepEqual(c.sent.at(-1), { t: 'batch', items: [{ t: 'drain' }] });
  });

  test('whenSettled: resolves when the last handed-over connection settles, when it exits, or at the timeout', async () => {
    const h = new WorkerHandle(1, 0, child(), () => undefined);
    await h.whenSettled(60000);
    h.inflight = 2;
    let settled = false;
    const wait = h.whenSettled(60000).then(() => (settled = true));
    h.settleOne();
    await Promise.resolve();
    assert.equal(settled, false, 'one still pending');
    h.settleOne();
    await wait;
    h.inflight = 1;
    const onExit = h.whenSettled(60000);
    h.markExited();
    await onExit;
    const h2 = new WorkerHandle(2, 0, child(), () => undefined);
    h2.inflight = 1;
    await h2.whenSettled(1);
    assert.equal(h2.inflight, 1);
  });
});
