import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { placement, startAgent } from './cluster-helpers.js';
import { waitFor } from '../helpers/wait.js';
import { createStore } from '../../src/store/open-store.js';
import { allRows } from '../audit/helpers.js';

type EventFrame = Extract<ServerFrame, { type: 'event' }>;
const REDIS_URL = process.env.ZENCONN_TEST_REDIS_URL || 'redis://127.0.0.1:6379/0';

describe('zenconn agent on a Redis bus (--bus): the agent is one node for all its workers', () => {
  test('two agents sharing Redis: events, counts and `left` for a dead worker cross between them', async () => {
    const prefix = `zc_test_${randomBytes(6).toString('hex')}:`;
    const flags = ['--workers', '2', '--bus', REDIS_URL, '--bus-prefix', prefix];
    const a = await startAgent(flags);
    const b = await startAgent(flags);
    const clients: TestClient[] = [];
    try {
      const token = await makeToken('m', ['private']);
      const x = await TestClient.connect(a.port, { token });
      const x2 = await TestClient.connect(a.port, { token });
      const y1 = await TestClient.connect(b.port, { token });
      const y2 = await TestClient.connect(b.port, { token });
      clients.push(x, x2, y1, y2);
      assert.notEqual(...((await placement(a, [x, x2])) as [number, number]));
      for (const c of clients) await c.subscribe('news');

      // received.count covers the sibling worker and the other agent's workers (eventually).
      await waitFor('counts to reach every worker', async () => {
        x.send({ type: 'broadcast', channel: 'news', data: 'probe' });
        return (await x.nextOf('received')).count === 3;
      }, 5000);
      await Promise.all(clients.map((c) => c.quiet(200))); // the probes still in flight
      x.send({ type: 'broadcast', channel: 'news', data: 'hello' });
      for (const c of [x2, y1, y2]) assert.equal(((await c.nextOf('event')) as EventFrame).data, 'hello');
      y2.send({ type: 'broadcast', channel: 'news', data: 'back' });
      for (const c of [x, x2, y1]) assert.equal(((await c.nextOf('event')) as EventFrame).from, y2.sessionId);
      for (const c of clients) assert.deepEqual((await c.quiet(100)).filter((f) => f.type === 'event'), [], 'nothing twice');

      // A private member on agent B hears `left` when the worker holding x on agent A dies.
      await x.subscribe('private.p');
      await y1.subscribe('private.p');
      assert.equal((await x.nextOf('joined')).data.session, y1.sessionId);
      const [victim] = await placement(a, [x]);
      process.kill(victim!, 'SIGKILL');
      const left = await y1.nextOf('left', 5000);
      assert.deepEqual(left.data, { session: x.sessionId, user: 'm' });
      // Agent A writes what the dead worker cannot: x's `left` (heard on agent B) and its session.close (1006).
      const store = createStore(a.database);
      await store.open();
      try {
        let rows: Awaited<ReturnType<typeof allRows>> = [];
        await waitFor('the agent\'s audit rows of x', async () => {
          rows = await allRows(store, { sessionId: x.sessionId });
          return rows.some((row) => row.type === 'left') && rows.some((row) => row.type === 'session.close' && row.direction === 'system' && JSON.parse(row.payload!).code === 1006);
        }, 5000);
        const leftRow = rows.find((r) => r.type === 'left')!;
        assert.equal(leftRow.channel, 'private.p');
        assert.equal(leftRow.recipients, 1, 'y1, on the other agent');
      } finally {
        await store.close();
      }
      await a.waitWorkers((w) => w.length === 2 && w.every((v) => v.state === 'ready' && v.pid !== victim), 3000);
      // The survivor on agent A still reaches agent B.
      x2.send({ type: 'broadcast', channel: 'news', data: 'still' });
      assert.equal(((await y2.nextOf('event')) as EventFrame).data, 'still');
      assert.equal((await fetch(`http://127.0.0.1:${a.port}/readyz`)).status, 200);
    } finally {
      for (const c of clients) c.ws.terminate();
      await a.cleanup();
      await b.cleanup();
    }
  });
});
