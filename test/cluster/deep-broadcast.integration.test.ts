import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { placement, startAgent } from './cluster-helpers.js';

describe('zenconn agent: nothing a peer sends can crash a worker', () => {
  test('a POST whose data is nested 2,500 deep gets 400; both workers keep their pids, no session closes, the next broadcast reaches everyone', async () => {
    const agent = await startAgent(['--workers', '2']);
    const clients: TestClient[] = [];
    try {
      clients.push(...(await Promise.all(Array.from({ length: 4 }, (_, i) => TestClient.connect(agent.port, { protocol: i % 2 === 0 ? 'bin' : 'json' })))));
      const before = await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready' && x.sessions === 2));
      for (const c of clients) await c.subscribe('room');
      const pids = await placement(agent, clients);
      assert.equal(new Set(pids).size, 2, 'subscribers on both workers');

      const publisher = await makeToken('app', ['publish']);
      const post = (body: string): Promise<Response> =>
        fetch(`http://127.0.0.1:${agent.port}/api/broadcast`, {
          method: 'POST',
          headers: { authorization: `Bearer ${publisher}`, 'content-type': 'application/json' },
          body
        });
      // Twice: the second one used to hit workers still in restart backoff.
      for (let i = 0; i < 2; i++) {
        const deep = await post(`{"channel":"room","data":${'['.repeat(2500)}${']'.repeat(2500)}}`);
        assert.equal(deep.status, 400);
        assert.equal(((await deep.json()) as { code: string }).code, 'ERR_HTTP_DATA_TOO_DEEP');
      }
      const ok = await post(JSON.stringify({ channel: 'room', data: 'after' }));
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { count: number }).count, 4);
      for (const c of clients) {
        const e = await c.nextOf('event');
        assert.equal(e.type === 'event' && e.data, 'after');
      }
      for (const c of clients) assert.equal(c.closeCode, null, 'no session closed');
      const after = await agent.workers();
      assert.deepEqual(after.map((w) => [w.pid, w.state]), before.map((w) => [w.pid, 'ready']), 'both workers kept their pids');
      assert.deepEqual(after.map((w) => w.undeliverable), [0, 0], 'nothing reached a peer that it could not deliver');
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });
});
