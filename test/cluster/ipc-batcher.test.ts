import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { IpcBatcher, BatchFlusher, PUBLISH_COALESCE_MS, REGISTRY_COALESCE_MS, type BatchSink } from '../../src/cluster/ipc-batcher.js';
import type { IpcBatch } from '../../src/cluster/ipc-messages.js';
import { waitFor } from '../helpers/wait.js';

type Item = { t: 'msg'; n: number } | { t: 'ctl'; n: number } | { t: 'count'; channel: string; count: number };

/** A sink that records batches; `hold` keeps their `written` callbacks pending. */
function sink(): BatchSink<Item> & { batches: Item[][]; open: boolean; hold: boolean; release(): void } {
  const held: Array<() => void> = [];
  return {
    batches: [],
    open: true,
    hold: false,
    writable() {
      return this.open;
    },
    send(batch: IpcBatch<Item>, written: () => void) {
      this.batches.push(batch.items);
      if (this.hold) held.push(written);
      else written();
    },
    release() {
      for (const w of held.splice(0)) w();
    }
  };
}

const countItem = (channel: string, count: number): Item => ({ t: 'count', channel, count });

describe('IpcBatcher (the batch of one end of the IPC channel)', () => {
  test('counts coalesced per channel lead the batch, then the items in order; nothing twice', () => {
    const s = sink();
    const b = new IpcBatcher<Item>(s, countItem);
    b.push({ t: 'msg', n: 1 }, 'message');
    b.setCount('c', 1);
    b.push({ t: 'ctl', n: 2 }, 'prompt');
    b.setCount('c', 3);
    b.flush();
    b.flush();
    assert.deepEqual(s.batches, [[{ t: 'count', channel: 'c', count: 3 }, { t: 'msg', n: 1 }, { t: 'ctl', n: 2 }]]);
  });

  test('messages alone wait until PUBLISH_COALESCE_MS after the last batch; anything urgent does not', () => {
    const b = new IpcBatcher<Item>(sink(), countItem);
    b.push({ t: 'msg', n: 1 }, 'message');
    // The flush's own clock reading lies between these two (a busy CI may put ms between them).
    const before = performance.now();
    b.flush();
    const after = performance.now();
    b.push({ t: 'msg', n: 2 }, 'message');
    assert.ok(b.waitMs(before) > 0, 'waits after the last batch');
    assert.ok(b.waitMs(after) <= PUBLISH_COALESCE_MS);
    assert.equal(b.waitMs(after + PUBLISH_COALESCE_MS), 0);
    b.push({ t: 'ctl', n: 3 }, 'prompt');
    assert.equal(b.waitMs(before), 0);
  });

  test('registry items and counts wait up to REGISTRY_COALESCE_MS from the first of them; a prompt item takes them along', () => {
    const s = sink();
    const b = new IpcBatcher<Item>(s, countItem);
    const before = performance.now();
    b.setCount('c', 1);
    const t0 = performance.now();
    assert.ok(b.waitMs(before) > 0, 'waits');
    const first = b.waitMs(t0);
    assert.ok(first <= REGISTRY_COALESCE_MS, `waits at most REGISTRY_COALESCE_MS (${first} ms)`);
    b.push({ t: 'ctl', n: 1 }, 'registry');
    assert.ok(b.waitMs(t0 + REGISTRY_COALESCE_MS / 2) <= Math.max(0, first - REGISTRY_COALESCE_MS / 2) + 0.001, 'counted from the first registry item, not the last');
    assert.equal(b.waitMs(t0 + REGISTRY_COALESCE_MS + 1), 0);
    b.push({ t: 'ctl', n: 2 }, 'prompt');
    assert.equal(b.waitMs(t0), 0, 'a prompt item goes at once');
    b.flush();
    assert.deepEqual(s.batches, [[{ t: 'count', channel: 'c', count: 1 }, { t: 'ctl', n: 1 }, { t: 'ctl', n: 2 }]]);
    assert.equal(b.written, 1);
  });

  test('counts the batches not yet written; a closed end drops the batch', () => {
    const s = sink();
    s.hold = true;
    const b = new IpcBatcher<Item>(s, countItem);
    b.push({ t: 'msg', n: 1 }, 'message');
    b.flush();
    b.push({ t: 'msg', n: 2 }, 'message');
    b.flush();
    assert.equal(b.unsentBatches, 2);
    s.release();
    assert.equal(b.unsentBatches, 0);
    s.open = false;
    b.push({ t: 'msg', n: 3 }, 'prompt');
    b.flush();
    assert.equal(s.batches.length, 2);
    assert.equal(b.unsentBatches, 0);
  });

  test('a send that throws (the channel closed) is not counted as unsent', () => {
    const b = new IpcBatcher<Item>({ writable: () => true, send: () => { throw new Error('closed'); } }, countItem);
    b.push({ t: 'ctl', n: 1 }, 'prompt');
    b.flush();
    assert.equal(b.unsentBatches, 0);
  });
});

describe('BatchFlusher (the agent turn over its workers)', () => {
  test('one flush turn for every dirty target; a target with messages alone waits for its window', async () => {
    const sa = sink();
    const sb = sink();
    const a = { batcher: new IpcBatcher<Item>(sa, countItem) };
    const b = { batcher: new IpcBatcher<Item>(sb, countItem) };
    const flusher = new BatchFlusher<typeof a>();
    b.batcher.push({ t: 'msg', n: 0 }, 'message');
    b.batcher.flush();
    a.batcher.push({ t: 'ctl', n: 1 }, 'prompt');
    b.batcher.push({ t: 'msg', n: 2 }, 'message');
    flusher.markDirty(a);
    flusher.markDirty(b);
    await waitFor('both batches', () => sa.batches.length === 1 && sb.batches.length === 2);
    assert.deepEqual(sb.batches[1], [{ t: 'msg', n: 2 }]);
  });

  test('flushAll sends everything at once; a forgotten target is not flushed', () => {
    const s = sink();
    const a = { batcher: new IpcBatcher<Item>(s, countItem) };
    const gone = { batcher: new IpcBatcher<Item>(sink(), countItem) };
    const flusher = new BatchFlusher<typeof a>();
    a.batcher.push({ t: 'msg', n: 1 }, 'message');
    a.batcher.flush();
    a.batcher.push({ t: 'msg', n: 2 }, 'message');
    gone.batcher.push({ t: 'ctl', n: 3 }, 'prompt');
    flusher.markDirty(a);
    flusher.markDirty(gone);
    flusher.forget(gone);
    flusher.flushAll();
    assert.equal(s.batches.length, 2);
    assert.equal(gone.batcher.written, 0, 'still pending');
  });
});
