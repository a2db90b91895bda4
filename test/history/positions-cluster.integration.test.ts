import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { placement, startAgent } from '../cluster/cluster-helpers.js';
import { randomPrefix, serveOnBus, startRedis, testRedisUrl } from '../bus/redis-helpers.js';
import { assertSequence, connect, publishMany, subscribeAt, takeEvents } from './history-helpers.js';

/**
 * The same checks wherever the publisher and the subscribers are: offsets gapless and
 * equal for every recipient, history, and recovery with events still coming.
 */
async function sequenceAcross(pubPort: number, subPort: number, clients: TestClient[], samePlace?: (a: TestClient, b: TestClient) => Promise<boolean>): Promise<void> {
  const channel = `seq-${Math.random().toString(36).slice(2, 8)}`;
  const pub = await connect(pubPort, await makeToken('backend', ['publish']));
  const far = await connect(subPort, undefined, 'bin');
  const near = await connect(pubPort);
  clients.push(pub, near, far);
  if (samePlace) assert.equal(await samePlace(pub, far), false, 'the publisher and the far subscriber are on different workers');
  const s = await subscribeAt(far, channel);
  const sn = await subscribeAt(near, channel);
  assert.equal(s.offset, 0);
  assert.deepEqual([sn.offset, sn.epoch], [0, s.epoch]);
  await publishMany(pub, channel, 30);
  const a = await takeEvents(far, channel, 30);
  const b = await takeEvents(near, channel, 30);
  assertSequence(a, 1, s.epoch!, 'far');
  assertSequence(b, 1, s.epoch!, 'near');
  assert.deepEqual(a.map((e) => e.id), b.map((e) => e.id));

  // History, asked where the subscriber is.
  far.send({ type: 'history', channel, since: { offset: 25, epoch: s.epoch! }, limit: 100 });
  const h = await far.nextOf('history');
  assert.deepEqual([h.offset, h.epoch, h.complete], [30, s.epoch, true]);
  assertSequence(h.events, 26, s.epoch!, 'history');

  // The far subscriber goes away, misses 20, comes back while 100 more are sent.
  await far.close();
  await publishMany(pub, channel, 20, 30);
  const back = await connect(subPort);
  clients.push(back);
  const sending = publishMany(pub, channel, 100, 50);
  const r = await subscribeAt(back, channel, { offset: 30, epoch: s.epoch! });
  assert.equal(r.recovered, true);
  assert.equal(r.epoch, s.epoch);
  assert.ok(r.offset! >= 50, `replay ends at ${r.offset}`);
  await sending;
  assertSequence(await takeEvents(back, channel, 120), 31, s.epoch!, 'recovered');
  assert.deepEqual(await back.quiet(150), []);
  assertSequence(await takeEvents(near, channel, 120), 31, s.epoch!, 'near, live');
}

describe('positions across processes', () => {
  test('an agent with 2 workers: the agent sequences, publisher and subscriber on different workers', async () => {
    const agent = await startAgent(['--workers', '2']);
    const clients: TestClient[] = [];
    try {
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready'));
      await sequenceAcross(agent.port, agent.port, clients, async (x, y) => {
        const [p, q] = await placement(agent, [x, y]);
        return p === q;
      });
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  test('two `zenconn serve` on one Redis: Redis sequences, the publisher on one node, the subscriber on the other', async () => {
    const prefix = randomPrefix();
    const [z1, z2] = await Promise.all([serveOnBus(testRedisUrl(), prefix), serveOnBus(testRedisUrl(), prefix)]);
    const clients: TestClient[] = [];
    try {
      await sequenceAcross(z1.port, z2.port, clients);
    } finally {
      for (const c of clients) c.ws.terminate();
      await Promise.all([z1.stop('SIGTERM'), z2.stop('SIGTERM')]);
    }
  });

  test('an agent on Redis with 2 workers and a serve node: one sequence for all', async () => {
    const prefix = randomPrefix();
    const agent = await startAgent(['--workers', '2', '--bus', testRedisUrl(), '--bus-prefix', prefix]);
    const z = await serveOnBus(testRedisUrl(), prefix);
    const clients: TestClient[] = [];
    try {
      await sequenceAcross(z.port, agent.port, clients);
    } finally {
      for (const c of clients) c.ws.terminate();
      await Promise.all([agent.cleanup(), z.stop('SIGTERM')]);
    }
  });

  test('Redis restarted mid-stream: the subscriber either recovers without a gap or is told recovered:false with a new epoch', async () => {
    const redis = await startRedis();
    const prefix = randomPrefix();
    const [z1, z2] = await Promise.all([serveOnBus(redis.url, prefix), serveOnBus(redis.url, prefix)]);
    const clients: TestClient[] = [];
    let redis2: Awaited<ReturnType<typeof startRedis>> | null = null;
    try {
      const pub = await connect(z1.port, await makeToken('backend', ['publish']));
      const sub = await connect(z2.port);
      clients.push(pub, sub);
      const s = await subscribeAt(sub, 'restart');
      await publishMany(pub, 'restart', 10);
      const before = await takeEvents(sub, 'restart', 10);
      assertSequence(before, 1, s.epoch!);
      await redis.kill();
      redis2 = await startRedis(redis.port);
      // Publish until the bus takes events again (refusals and drops are allowed while Redis is away).
      await waitFor('an event published after the restart to reach the subscriber', async () => {
        pub.send({ type: 'broadcast', channel: 'restart', data: 'after' });
        await pub.next((f) => f.type === 'received' || f.type === 'error', 5000);
        return sub.frames.some((f) => f.type === 'event' && f.data === 'after');
      }, 20000, 100);
      const after = sub.frames.find((f) => f.type === 'event' && f.data === 'after')!;
      assert.ok(after.type === 'event');
      assert.notEqual(after.epoch, s.epoch, 'Redis lost the sequence: a new epoch');
      // A client that comes back with the old position learns it honestly.
      const back = await connect(z2.port);
      clients.push(back);
      const r = await subscribeAt(back, 'restart', { offset: 10, epoch: s.epoch! });
      assert.equal(r.recovered, false);
      assert.equal(r.epoch, after.epoch);
    } finally {
      for (const c of clients) c.ws.terminate();
      await Promise.all([z1.stop('SIGTERM'), z2.stop('SIGTERM')]);
      await redis2?.kill();
      await redis.kill();
    }
  });
});
