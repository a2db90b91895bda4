import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/server.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { withSchema } from '../helpers/pg.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { assertSequence, connect, publishMany, subscribeAt, takeEvents } from './history-helpers.js';

type History = Extract<ServerFrame, { type: 'history' }>;

/** History and recovery reaching back before a 5-event hot window, served with the audit trail. */
async function olderThanTheWindow(database: string | null): Promise<void> {
  const srv = await startServer({ 'history-size': '5', 'recovery-max': '100', ...(database ? { database } : {}) });
  try {
    const pub = await connect(srv.port, await makeToken('backend', ['publish']));
    const a = await connect(srv.port);
    const epoch = (await subscribeAt(a, 'old')).epoch!;
    await a.close();
    await publishMany(pub, 'old', 20);
    const h = await connect(srv.port, undefined, 'bin');
    // The audit rows reach the database in batches: ask until they are there.
    let answer: History | null = null;
    await waitFor('the events older than the window in the audit trail', async () => {
      h.send({ type: 'history', channel: 'old', since: { offset: 2, epoch }, limit: 100 });
      answer = await h.nextOf('history');
      return answer.complete;
    });
    const got = answer as unknown as History;
    assert.equal(got.events.length, 18);
    assertSequence(got.events, 3, epoch, 'audit + window');
    assert.deepEqual(got.events.map((e) => e.data), Array.from({ length: 18 }, (_, i) => ({ n: i + 2 })));
    // A limit that ends inside the audit part.
    h.send({ type: 'history', channel: 'old', since: { offset: 2, epoch }, limit: 4 });
    const cut = await h.nextOf('history');
    assertSequence(cut.events, 3, epoch);
    assert.deepEqual([cut.events.length, cut.complete], [4, false]);
    // Recovery from the same point: every missed event once, in order, then live.
    const back = await connect(srv.port);
    const r = await subscribeAt(back, 'old', { offset: 1, epoch });
    assert.deepEqual([r.recovered, r.offset], [true, 20]);
    assertSequence(await takeEvents(back, 'old', 19), 2, epoch, 'recovered');
    await publishMany(pub, 'old', 1, 20);
    assertSequence(await takeEvents(back, 'old', 1), 21, epoch, 'live');
    for (const c of [pub, h, back]) await c.close();
  } finally {
    await srv.stop();
  }
}

describe('history older than the hot window comes from the audit trail', () => {
  test('on SQLite', () => olderThanTheWindow(null));

  test('on PostgreSQL', async () => {
    const schema = await withSchema();
    try {
      await olderThanTheWindow(schema.url);
    } finally {
      await schema.drop();
    }
  });
});
