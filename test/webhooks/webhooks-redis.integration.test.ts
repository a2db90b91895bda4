import { test, describe } from 'node:test';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import type { ZenProcess } from '../helpers/process.js';
import { randomPrefix, redisClient, serveOnBus, startRedis, testRedisUrl } from '../bus/redis-helpers.js';
import { startAgent } from '../cluster/cluster-helpers.js';
import { Receiver } from './receiver.js';

describe('webhooks across nodes on one Redis', () => {
  test('channels with members on two serve nodes, joined and left at once: one channel_occupied and one channel_vacated each', async () => {
    (await redisClient()).disconnect();
    const receiver = await Receiver.start();
    const prefix = randomPrefix();
    const nodes: TestServer[] = [];
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 2; i++) nodes.push(await startServer({ bus: testRedisUrl(), 'bus-prefix': prefix, webhook: receiver.url }));
      const channels = Array.from({ length: 10 }, (_, i) => `r${i}`);
      for (const node of nodes) for (let i = 0; i < 2; i++) clients.push(await TestClient.connect(node.port));
      // Every client joins every channel, all at once: both nodes go 0 → 1 on each channel together.
      await Promise.all(clients.flatMap((c) => channels.map((ch) => c.subscribe(ch))));
      await waitFor('an occupied per channel', () => new Set(receiver.events.filter((e) => e.name === 'channel_occupied').map((e) => e.channel)).size === 10);
      await Promise.all(clients.map((c) => c.close()));
      await waitFor('a vacated per channel', () => new Set(receiver.events.filter((e) => e.name === 'channel_vacated').map((e) => e.channel)).size === 10);
      // Both nodes have settled (every decision made and sent) before counting.
      for (const n of nodes) assert.ok(await n.node.webhooks!.flush(5000));
      for (const ch of channels) {
        assert.equal(receiver.events.filter((e) => e.name === 'channel_occupied' && e.channel === ch).length, 1, `occupied ${ch}`);
        assert.equal(receiver.events.filter((e) => e.name === 'channel_vacated' && e.channel === ch).length, 1, `vacated ${ch}`);
      }
    } finally {
      for (const n of nodes) await n.stop();
      await receiver.close();
    }
  });

  test('a node killed with SIGKILL: once it stops answering, the channel it alone still held is vacated by a live node', async () => {
    (await redisClient()).disconnect();
    const receiver = await Receiver.start();
    const prefix = randomPrefix();
    let dead: ZenProcess | null = null;
    let live: TestServer | null = null;
    try {
      dead = await serveOnBus(testRedisUrl(), prefix, ['--webhook', receiver.url, '--log-level', 'error']);
      live = await startServer({ bus: testRedisUrl(), 'bus-prefix': prefix, webhook: receiver.url });
      const a = await TestClient.connect(dead.port);
      const b = await TestClient.connect(live.port);
      await a.subscribe('shared');
      await b.subscribe('shared');
      await waitFor('channel_occupied', () => receiver.events.some((e) => e.name === 'channel_occupied'));
      await b.close();
      assert.ok(await live.node.webhooks!.flush(5000));
      assert.equal(receiver.events.filter((e) => e.name === 'channel_vacated').length, 0, 'the dead-to-be node still holds the channel');
      dead.child.kill('SIGKILL');
      await dead.exited;
      await waitFor('channel_vacated from the live node', () => receiver.events.some((e) => e.name === 'channel_vacated'), 20_000);
      const vacated = receiver.events.filter((e) => e.name === 'channel_vacated');
      assert.deepEqual(vacated.map((e) => [e.channel, e.session, e.user]), [['shared', null, null]]);
      assert.equal(receiver.events.filter((e) => e.name === 'channel_occupied').length, 1);
    } finally {
      if (dead !== null && dead.child.exitCode === null && dead.child.signalCode === null) await dead.stop('SIGKILL');
      await live?.stop();
      await receiver.close();
    }
  });

  test('an agent (2 workers) and a serve node on one Redis: one channel_occupied and one channel_vacated for a channel on all three processes', async () => {
    (await redisClient()).disconnect();
    const receiver = await Receiver.start();
    const prefix = randomPrefix();
    const agent = await startAgent(['--workers', '2', '--bus', testRedisUrl(), '--bus-prefix', prefix, '--webhook', receiver.url]);
    let serve: TestServer | null = null;
    const clients: TestClient[] = [];
    try {
      serve = await startServer({ bus: testRedisUrl(), 'bus-prefix': prefix, webhook: receiver.url });
      for (let i = 0; i < 4; i++) clients.push(await TestClient.connect(agent.port));
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.sessions === 2));
      for (let i = 0; i < 2; i++) clients.push(await TestClient.connect(serve.port));
      await Promise.all(clients.map((c) => c.subscribe('everywhere')));
      await waitFor('channel_occupied', () => receiver.events.some((e) => e.name === 'channel_occupied'));
      await Promise.all(clients.map((c) => c.close()));
      await waitFor('channel_vacated', () => receiver.events.some((e) => e.name === 'channel_vacated'));
      assert.ok(await serve.node.webhooks!.flush(5000));
      // The agent's side: a second, late event would come within its next batch; the queue files tell it is empty.
      const agentQueue = join(agent.dir, 'spool', 'webhooks');
      await waitFor('the agent to hold no queued event', () => !existsSync(agentQueue) || readdirSync(agentQueue).length === 0);
      assert.equal(receiver.events.filter((e) => e.name === 'channel_occupied').length, 1);
      assert.equal(receiver.events.filter((e) => e.name === 'channel_vacated').length, 1);
    } finally {
      await serve?.stop();
      await agent.cleanup();
      await receiver.close();
    }
  });

  test('a Redis that restarts empty: each node writes its channels again, so the last one out still sends channel_vacated', async () => {
    let redis = await startRedis();
    const receiver = await Receiver.start();
    const prefix = randomPrefix();
    const nodes: TestServer[] = [];
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 2; i++) nodes.push(await startServer({ bus: redis.url, 'bus-prefix': prefix, webhook: receiver.url }));
      for (const n of nodes) clients.push(await TestClient.connect(n.port));
      for (const c of clients) await c.subscribe('keep');
      await waitFor('channel_occupied', () => receiver.events.some((e) => e.name === 'channel_occupied'));
      const port = redis.port;
      await redis.kill();
      redis = await startRedis(port);
      const check = await redisClient(redis.url);
      try {
        await waitFor('both nodes back in the channel\'s set', async () => (await check.scard(`${prefix}wh:ch:keep`)) === 2);
      } finally {
        check.disconnect();
      }
      await waitFor('both buses ready', () => nodes.every((n) => n.node.bus.ready));
      for (const c of clients) await c.close();
      for (const n of nodes) assert.ok(await n.node.webhooks!.flush(5000));
      assert.equal(receiver.events.filter((e) => e.name === 'channel_vacated').length, 1);
      assert.equal(receiver.events.filter((e) => e.name === 'channel_occupied').length, 1);
    } finally {
      for (const n of nodes) await n.stop();
      await receiver.close();
      await redis.kill();
    }
  });
});
