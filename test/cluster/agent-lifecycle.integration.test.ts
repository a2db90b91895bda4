import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { withSchema } from '../helpers/pg.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { httpGet, pace, placement, startAgent } from './cluster-helpers.js';
import { waitFor } from '../helpers/wait.js';

type EventFrame = Extract<ServerFrame, { type: 'event' }>;

describe('zenconn agent: rolling restart and shutdown', () => {
  test('SIGHUP restarts the workers one at a time under traffic; the port answers throughout', async () => {
    const agent = await startAgent(['--workers', '2']);
    const clients: TestClient[] = [];
    try {
      const old = await agent.workers();
      const publisher = await makeToken('pub', ['publish']);
      for (let i = 0; i < 4; i++) clients.push(await TestClient.connect(agent.port, { token: publisher }));
      for (const c of clients) await c.subscribe('ticks');
      const closes = clients.map((c) => c.closed(20000));

      // Traffic: broadcasts among the connected clients, health checks and new sessions, all the time.
      let stop = false;
      const failures: string[] = [];
      let polls = 0;
      let connects = 0;
      const poller = (async () => {
        while (!stop) {
          try {
            const r = await httpGet(agent.port, '/healthz');
            if (r.status !== 200) failures.push(`healthz ${r.status}`);
            polls++;
          } catch (err) {
            failures.push(`healthz: ${(err as Error).message}`);
          }
          await pace(20);
        }
      })();
      const connector = (async () => {
        while (!stop) {
          try {
            const c = await TestClient.connect(agent.port);
            connects++;
            c.ws.terminate();
          } catch (err) {
            failures.push(`connect: ${(err as Error).message}`);
          }
          await pace(50);
        }
      })();
      let n = 0;
      const pump = setInterval(() => {
        for (const c of clients) if (c.closeCode === null) c.send({ type: 'broadcast', channel: 'ticks', data: n++ });
      }, 20);

      await waitFor('the traffic to flow', () => polls >= 3 && connects >= 2 && n >= 20);
      agent.zen.child.kill('SIGHUP');
      // Both old workers were told to go, and each one's sessions got 1001.
      for (const code of await Promise.all(closes)) assert.equal(code, 1001);
      const fresh = await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready' && !old.some((o) => o.pid === x.pid)), 20000);
      // Traffic goes on through the fresh workers a while.
      const [pollsThen, connectsThen] = [polls, connects];
      await waitFor('traffic through the fresh workers', () => polls >= pollsThen + 3 && connects >= connectsThen + 2);
      stop = true;
      clearInterval(pump);
      await Promise.all([poller, connector]);
      assert.deepEqual(failures, []);
      assert.ok(polls > 10 && connects > 5, `polls ${polls}, connects ${connects}`);

      // The new workers carry traffic between them.
      const a = await TestClient.connect(agent.port);
      const b = await TestClient.connect(agent.port);
      clients.push(a, b);
      const [pa, pb] = await placement(agent, [a, b]);
      assert.notEqual(pa, pb);
      assert.ok(fresh.some((w) => w.pid === pa) && fresh.some((w) => w.pid === pb));
      await a.subscribe('after');
      await b.subscribe('after');
      await waitFor('the registry to list both members of after', async () => (await agent.sessions('?channel=after')).length === 2);
      a.send({ type: 'broadcast', channel: 'after', data: 'hello' });
      assert.equal(((await b.nextOf('event')) as EventFrame).data, 'hello');
      assert.equal((await a.nextOf('received')).count, 1);
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  test('PostgreSQL: SIGTERM drains every worker and exits 0; agent and worker rows linked and stopped, sessions 1001', async () => {
    const schema = await withSchema();
    const agent = await startAgent(['--workers', '2', '--database', schema.url]);
    try {
      const workers = await agent.workers();
      const clients = await Promise.all([0, 1, 2, 3].map(() => TestClient.connect(agent.port, { protocol: 'bin' })));
      for (const c of clients) await c.subscribe('bye');
      await waitFor('the session rows to be written', async () => (await schema.query('SELECT id FROM sessions')).length === 4);
      const closed = clients.map((c) => c.closed(15000));
      const t0 = Date.now();
      assert.equal(await agent.zen.stop('SIGTERM'), 0);
      assert.ok(Date.now() - t0 < 15000);
      for (const code of await Promise.all(closed)) assert.equal(code, 1001);

      const servers = await schema.query<{ id: string; role: string; parent_id: string | null; stopped_at: Date | null; pid: number }>('SELECT id, role, parent_id, stopped_at, pid FROM servers');
      const agentRow = servers.find((s) => s.role === 'agent')!;
      assert.equal(agentRow.pid, agent.zen.child.pid);
      const workerRows = servers.filter((s) => s.role === 'worker');
      assert.deepEqual(workerRows.map((w) => w.id).sort(), workers.map((w) => w.id).sort());
      for (const s of servers) assert.notEqual(s.stopped_at, null, `${s.role} ${s.id} stopped`);
      for (const w of workerRows) assert.equal(w.parent_id, agentRow.id);
      const sessions = await schema.query<{ id: string; server_id: string; close_code: number }>('SELECT id, server_id, close_code FROM sessions');
      assert.equal(sessions.length, 4);
      for (const s of sessions) {
        assert.ok(workerRows.some((w) => w.id === s.server_id));
        assert.equal(s.close_code, 1001);
      }
      assert.equal(new Set(sessions.map((s) => s.server_id)).size, 2, 'the sessions were spread over both workers');
    } finally {
      await agent.cleanup();
      await schema.drop();
    }
  });
});
