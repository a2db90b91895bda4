import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ZenProcess } from '../helpers/process.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import type { MemberInfo } from '../../src/protocol/frames.js';
import { randomPrefix, redisClient, serveOnBus, testRedisUrl, waitFor } from './redis-helpers.js';
import { startAgent } from '../cluster/cluster-helpers.js';

/** The sorted session ids `c` gets for `channel`'s presence. */
async function listed(c: TestClient, channel: string): Promise<string[]> {
  c.send({ type: 'presence', channel });
  const p = await c.nextOf('presence');
  assert.equal(p.truncated, false);
  return p.members.map((m) => m.session).sort();
}

const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

describe('presence across nodes on one Redis', () => {
  test('three serve nodes: members of every node are listed; a node killed -9 and a node stopped cleanly are dropped', async () => {
    const redis = await redisClient(); // fails clearly when the shared Redis is not there
    redis.disconnect();
    const prefix = randomPrefix();
    const url = testRedisUrl();
    const procs: ZenProcess[] = [];
    const clients: TestClient[] = [];
    try {
      procs.push(...(await Promise.all([serveOnBus(url, prefix), serveOnBus(url, prefix), serveOnBus(url, prefix)])));
      const [, z2, z3] = procs as [ZenProcess, ZenProcess, ZenProcess];
      for (const [i, z] of procs.entries()) clients.push(await TestClient.connect(z.port, { protocol: i === 1 ? 'bin' : 'json', token: await makeToken(`user${i}`, ['private']) }));
      const [c1, c2] = clients as [TestClient, TestClient, TestClient];
      for (const c of clients) {
        assert.equal((await c.subscribe('private.room')).type, 'subscribed');
        assert.equal((await c.subscribe('lobby')).type, 'subscribed');
      }
      const all = clients.map((c) => c.sessionId).sort();
      for (const channel of ['private.room', 'lobby']) {
        for (const c of clients) await waitFor(`${channel} in full from every node`, async () => same(await listed(c, channel), all));
      }
      c2.send({ type: 'presence', channel: 'private.room' });
      const users = new Map((await c2.nextOf('presence')).members.map((m) => [m.session, m.user]));
      for (const [i, c] of clients.entries()) assert.equal(users.get(c.sessionId), `user${i}`);

      // The HTTP API of any node lists every node's members.
      const res = await fetch(`http://127.0.0.1:${z3.port}/api/presence?channel=lobby`, { headers: { authorization: `Bearer ${await makeToken('app', ['admin'])}` } });
      assert.equal(res.status, 200);
      assert.deepEqual(((await res.json()) as { members: MemberInfo[] }).members.map((m) => m.session).sort(), all);

      // z3 stops cleanly: it says goodbye, its members go at once.
      assert.equal(await z3.stop('SIGTERM'), 0);
      const two = [c1.sessionId, c2.sessionId].sort();
      for (const channel of ['private.room', 'lobby']) await waitFor(`${channel} without the stopped node`, async () => same(await listed(c1, channel), two));

      // z2 is killed: it says nothing; once its hash expires and a resync notices, it is gone.
      await z2.stop('SIGKILL');
      for (const channel of ['private.room', 'lobby']) await waitFor(`${channel} without the killed node`, async () => same(await listed(c1, channel), [c1.sessionId]), 20000);
      // Its private member was announced as left; nobody is told about the public channel.
      assert.ok(c1.frames.some((f) => f.type === 'left' && f.channel === 'private.room' && f.data.session === c2.sessionId));
      assert.ok(!c1.frames.some((f) => f.type === 'left' && f.channel === 'lobby'));
    } finally {
      for (const c of clients) c.ws.terminate();
      await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    }
  });

  test('an agent with two workers and a serve node: each lists the other\'s members', async () => {
    const prefix = randomPrefix();
    const url = testRedisUrl();
    const agent = await startAgent(['--workers', '2', '--bus', url, '--bus-prefix', prefix]);
    let z: ZenProcess | null = null;
    const clients: TestClient[] = [];
    try {
      z = await serveOnBus(url, prefix);
      for (let i = 0; i < 2; i++) clients.push(await TestClient.connect(agent.port, { token: await makeToken(`a${i}`, ['private']) }));
      clients.push(await TestClient.connect(z.port, { token: await makeToken('s', ['private']) }));
      for (const c of clients) {
        await c.subscribe('private.mixed');
        await c.subscribe('public-mixed');
      }
      const all = clients.map((c) => c.sessionId).sort();
      for (const channel of ['private.mixed', 'public-mixed']) {
        for (const c of clients) await waitFor(`${channel} in full`, async () => same(await listed(c, channel), all));
      }
      // A worker's member who leaves is dropped on the serve node too.
      await clients[0]!.close();
      const rest = all.filter((s) => s !== clients[0]!.sessionId);
      for (const channel of ['private.mixed', 'public-mixed']) await waitFor(`${channel} without the closed member`, async () => same(await listed(clients[2]!, channel), rest));
    } finally {
      for (const c of clients) c.ws.terminate();
      await z?.stop('SIGKILL');
      await agent.cleanup();
    }
  });
});
