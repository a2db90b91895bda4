import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient, upgradeStatus } from '../helpers/client.js';
import { waitFor } from '../helpers/wait.js';
import { admin, httpGet, startAgent } from './cluster-helpers.js';


test('--max-connections under an agent caps all its workers together: the cap is accepted, one more gets 503, counted in /agent/workers', async () => {
  // Two workers take 2 + 2: neither reaches the cap of 4 alone, so the 503 is the agent's.
  const agent = await startAgent(['--workers', '2', '--max-connections', '4']);
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const r = await upgradeStatus(agent.port);
      assert.equal(r.status, 101, `session ${i + 1} of 4`);
      clients.push(r.client!);
    }
    // The agent learns of sessions from its workers: once it counts all four, it refuses.
    await waitFor('the agent to count the four sessions', async () => (await httpGet(agent.port, '/healthz')).status === 503);
    assert.equal((await upgradeStatus(agent.port)).status, 503);
    clients.pop()!.ws.close();
    await waitFor('the agent to count three', async () => (await httpGet(agent.port, '/healthz')).status === 200);
    const view = JSON.parse((await httpGet(agent.port, '/agent/workers', { authorization: `Bearer ${await admin()}` })).body) as {
      agent: { refusedConnections: number };
      workers: Array<{ sessions: number }>;
    };
    assert.ok(view.agent.refusedConnections >= 2, `refused ${view.agent.refusedConnections}`);
    assert.ok(view.workers.every((w) => w.sessions < 4), 'no worker reached the cap alone');
    const again = await upgradeStatus(agent.port);
    assert.equal(again.status, 101, 'a place freed is taken again');
    clients.push(again.client!);
  } finally {
    for (const c of clients) c.ws.terminate();
    await agent.cleanup();
  }
});

test("a worker's flood-limit refusals are counted in /agent/workers", async () => {
  const agent = await startAgent(['--workers', '1', '--max-connections-per-ip', '1']);
  const clients: TestClient[] = [];
  try {
    const first = await upgradeStatus(agent.port);
    assert.equal(first.status, 101);
    clients.push(first.client!);
    assert.equal((await upgradeStatus(agent.port)).status, 429);
    await agent.waitWorkers((ws) => ws[0]?.refused?.maxConnectionsPerIp === 1);
  } finally {
    for (const c of clients) c.ws.terminate();
    await agent.cleanup();
  }
});
