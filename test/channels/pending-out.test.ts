import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditEntry, AuditSink } from '../../src/audit/audit-sink.js';
import { PendingOutRows } from '../../src/channels/pending-out.js';
import { loadConfig } from '../../src/config/load.js';
import { waitFor } from '../helpers/wait.js';

/** An audit sink that keeps what it is given, durable at once. */
function keepingSink(): AuditSink & { rows: AuditEntry[]; replies: number } {
  const sink = {
    rows: [] as AuditEntry[],
    replies: 0,
    healthy: true,
    full: false,
    refuseBroadcast: () => false,
    record(e: AuditEntry): void {
      sink.rows.push(e);
    },
    afterDurable(fn: () => void): void {
      fn();
    },
    flush: async () => true,
    close: async () => undefined
  };
  return sink;
}

function row(id: string): AuditEntry {
  return { messageId: id, at: new Date(), sessionId: null, userId: 'u', direction: 'out', type: 'event', channel: 'c', payload: 1, recipients: 0 };
}

describe('the out rows of events sequenced elsewhere (pending-out.ts)', () => {
  test('recorded once, with the position, when it comes; the reply after it', () => {
    const sink = keepingSink();
    const p = new PendingOutRows(sink, 60000);
    let replied = 0;
    p.add('a', row('a'), () => replied++);
    assert.deepEqual([sink.rows.length, replied], [0, 0]);
    p.settle('a', { offset: 7, epoch: 'e' });
    p.settle('a', { offset: 7, epoch: 'e' });
    assert.deepEqual(sink.rows.map((r) => [r.messageId, r.offset, r.epoch]), [['a', 7, 'e']]);
    assert.equal(replied, 1);
    // Lost: recorded without a position.
    p.add('b', row('b'), null);
    p.settle('b', null);
    assert.deepEqual([sink.rows[1]!.offset, sink.rows[1]!.epoch], [undefined, undefined]);
    // Closing records what still waits.
    p.add('c', row('c'), () => replied++);
    p.close();
    assert.deepEqual([sink.rows.length, p.size, replied], [3, 0, 2]);
  });

  test('a position that never comes: the row is recorded without one after the wait', async () => {
    const sink = keepingSink();
    let now = 1000;
    const p = new PendingOutRows(sink, 100, () => now);
    let replied = 0;
    p.add('x', row('x'), () => replied++);
    now += 50;
    p.add('y', row('y'), () => replied++);
    now += 60;
    // x waited 110 ms (past the bound), y 60 ms (not yet).
    await waitFor('x recorded', () => sink.rows.length === 1);
    assert.deepEqual([sink.rows[0]!.messageId, sink.rows[0]!.offset, replied, p.size], ['x', undefined, 1, 1]);
    now += 100;
    await waitFor('y recorded', () => sink.rows.length === 2);
    assert.equal(p.size, 0);
    p.close();
  });

  test('--position-wait-ms: bounds 100–600000', () => {
    assert.equal(loadConfig(new Map([['position-wait-ms', '100']]), {}).positionWaitMs, 100);
    assert.equal(loadConfig(new Map([['position-wait-ms', '600000']]), {}).positionWaitMs, 600000);
    assert.equal(loadConfig(new Map(), {}).positionWaitMs, 10000);
    assert.throws(() => loadConfig(new Map([['position-wait-ms', '99']]), {}), /position-wait-ms/);
    assert.throws(() => loadConfig(new Map([['position-wait-ms', '600001']]), {}), /position-wait-ms/);
  });
});
