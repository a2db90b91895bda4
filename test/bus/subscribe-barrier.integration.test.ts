import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import type { Redis } from 'ioredis';
import type { ZenProcess } from '../helpers/process.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { startAgent, type AgentUnderTest } from '../cluster/cluster-helpers.js';
import { randomPrefix, redisClient, serveOnBus, startDistantRedis, testRedisUrl, waitFor, type DistantRedis } from './redis-helpers.js';

type EventFrame = Extract<ServerFrame, { type: 'event' }>;

/**
 * `subscribed` is a promise to the client: anything sent into the channel after it,
 * from any node, reaches it. One node sits behind a proxy that delays each chunk to and
 * from Redis by DELAY_MS, so its SUBSCRIBE lands long after the client asked: a node
 * that answered `subscribed` at once would lose the first broadcast every time. Where a
 * test must act inside that window, it holds the proxy's replies: the node's SUBSCRIBE
 * then stays unacknowledged until the test releases them.
 */
const DELAY_MS = 80;
const REDIS_PORT = Number(new URL(testRedisUrl()).port || 6379);
/** The shared Redis, DELAY_MS away (each direction). */
const distantRedis = (): Promise<DistantRedis> => startDistantRedis(REDIS_PORT, DELAY_MS);

/** Subscribers of a zenconn channel's pub/sub channel, as the shared Redis counts them. */
async function numsub(redis: Redis, prefix: string, channel: string): Promise<number> {
  return Number(((await redis.pubsub('NUMSUB', `${prefix}ch:${channel}`)) as [string, number])[1]);
}

/** x and z on the slow node (behind `proxy`), y on the fast one. */
async function check(proxy: DistantRedis, prefix: string, slowPort: number, fastPort: number): Promise<void> {
  const publisher = await makeToken('pub', ['publish']);
  const x = await TestClient.connect(slowPort);
  const y = await TestClient.connect(fastPort);
  const z = await TestClient.connect(slowPort, { token: publisher });
  const redis = await redisClient();
  try {
    for (let i = 0; i < 3; i++) {
      const channel = `fresh.${i}`;
      await y.subscribe(channel);
      const t0 = performance.now();
      assert.equal((await x.subscribe(channel)).type, 'subscribed');
      // One SUBSCRIBE round trip through the proxy at least.
      assert.ok(performance.now() - t0 >= 2 * DELAY_MS - 5, `subscribed after ${performance.now() - t0} ms`);
      y.send({ type: 'broadcast', channel, data: i });
      assert.equal(((await x.nextOf('event', 5000)) as EventFrame).data, i);
    }

    // Pipelined: subscribe and broadcast in one go. The broadcast waits for the
    // subscription, so the answers come in order and the sender counts as subscribed.
    await y.subscribe('fresh.p');
    x.send({ type: 'subscribe', channel: 'fresh.p' });
    x.send({ type: 'broadcast', channel: 'fresh.p', data: 'hi' });
    assert.deepEqual(await x.next(() => true, 5000), { type: 'subscribed', channel: 'fresh.p' });
    assert.deepEqual(await x.next(() => true, 5000), { type: 'received', channel: 'fresh.p', count: 1 });
    assert.equal(((await y.nextOf('event', 5000)) as EventFrame).data, 'hi');

    // A member from the request on: an event published here while the subscription is
    // confirmed is delivered, after `subscribed`. The subscriber's replies are held: once the slow
    // node has sent its SUBSCRIBE the subscription stays unconfirmed until released.
    proxy.holdReplies();
    x.send({ type: 'subscribe', channel: 'fresh.q' });
    await waitFor('the slow node to send its SUBSCRIBE', async () => (await numsub(redis, prefix, 'fresh.q')) === 1, 5000);
    z.send({ type: 'broadcast', channel: 'fresh.q', data: 'early' });
    assert.equal((await z.nextOf('received')).count, 1);
    assert.deepEqual(
      x.frames.filter((f) => 'channel' in f && f.channel === 'fresh.q'),
      [],
      'the broadcast was handled inside the hold window: nothing answered to x yet'
    );
    proxy.releaseReplies();
    assert.deepEqual(await x.next(() => true, 5000), { type: 'subscribed', channel: 'fresh.q' });
    const early = (await x.next(() => true, 5000)) as EventFrame;
    assert.equal(early.type, 'event');
    assert.equal(early.data, 'early');
  } finally {
    proxy.releaseReplies();
    for (const c of [x, y, z]) c.ws.terminate();
    redis.disconnect();
  }
}

describe('`subscribed` is sent once the subscription is routed on every node', () => {
  test('two `serve` nodes, one of them 80 ms from Redis', async () => {
    const prefix = randomPrefix();
    let proxy: DistantRedis | null = null;
    const procs: ZenProcess[] = [];
    try {
      proxy = await distantRedis();
      procs.push(await serveOnBus(`redis://127.0.0.1:${proxy.port}/0`, prefix));
      procs.push(await serveOnBus(testRedisUrl(), prefix));
      await check(proxy, prefix, procs[0]!.port, procs[1]!.port);

      // A session that goes away while held leaves no member behind (counts go back to 0).
      const publisher = await makeToken('pub', ['publish']);
      const ghost = await TestClient.connect(procs[0]!.port);
      const probe = await TestClient.connect(procs[0]!.port, { token: publisher });
      const redis = await redisClient();
      const localCount = async (): Promise<number> => {
        probe.send({ type: 'broadcast', channel: 'fresh.ghost', data: 'probe' });
        return (await probe.nextOf('received', 5000)).count;
      };
      const y = await TestClient.connect(procs[1]!.port);
      try {
        proxy.holdReplies();
        ghost.send({ type: 'subscribe', channel: 'fresh.ghost' });
        await waitFor('the slow node to send its SUBSCRIBE', async () => (await numsub(redis, prefix, 'fresh.ghost')) === 1, 5000);
        assert.equal(await localCount(), 1, 'the held session is a member');
        ghost.ws.terminate();
        await waitFor('the slow node to see the held session go', async () => (await localCount()) === 0, 5000);
        assert.deepEqual(ghost.frames.filter((f) => f.type === 'subscribed'), [], 'it went inside the hold window');
        proxy.releaseReplies();
        // The slow node is done with the channel once it unsubscribed.
        await waitFor('the slow node to unsubscribe', async () => (await numsub(redis, prefix, 'fresh.ghost')) === 0, 5000);
        await y.subscribe('fresh.ghost');
        let count = -1;
        const counted = async (): Promise<boolean> => {
          y.send({ type: 'broadcast', channel: 'fresh.ghost', data: 'anyone?' });
          count = (await y.nextOf('received', 5000)).count;
          return count === 0;
        };
        await waitFor('the fast node to count nobody elsewhere', counted, 5000, 100).catch(() => undefined);
        assert.equal(count, 0, 'the held session that closed is counted nowhere');
      } finally {
        proxy.releaseReplies();
        for (const c of [ghost, probe, y]) c.ws.terminate();
        redis.disconnect();
      }
    } finally {
      await Promise.all(procs.map((p) => p.stop('SIGTERM')));
      await proxy?.close();
    }
  });

  test('an agent whose workers reach Redis through it (80 ms away), and a `serve` node', async () => {
    const prefix = randomPrefix();
    let proxy: DistantRedis | null = null;
    let agent: AgentUnderTest | null = null;
    let fast: ZenProcess | null = null;
    try {
      proxy = await distantRedis();
      agent = await startAgent(['--workers', '2', '--bus', `redis://127.0.0.1:${proxy.port}/0`, '--bus-prefix', prefix]);
      fast = await serveOnBus(testRedisUrl(), prefix);
      await check(proxy, prefix, agent.port, fast.port);
    } finally {
      await agent?.cleanup();
      await fast?.stop('SIGTERM');
      await proxy?.close();
    }
  });

  test('what waits for a subscription counts toward --max-buffered-bytes, exactly at the edge', async () => {
    const prefix = randomPrefix();
    let proxy: DistantRedis | null = null;
    let node: ZenProcess | null = null;
    const frame = (channel: string, size: number): string => {
      const head = `{"type":"broadcast","channel":"${channel}","data":"`;
      return head + 'x'.repeat(size - head.length - 2) + '"}';
    };
    try {
      proxy = await distantRedis();
      node = await serveOnBus(`redis://127.0.0.1:${proxy.port}/0`, prefix, ['--max-buffered-bytes', '2048']);
      const x = await TestClient.connect(node.port);
      // 2 × 1024 bytes wait for the subscription: at the limit, kept and handled in order.
      x.send({ type: 'subscribe', channel: 'edge.a' });
      x.sendRaw(frame('edge.a', 1024));
      x.sendRaw(frame('edge.a', 1024));
      assert.deepEqual(await x.next(() => true, 5000), { type: 'subscribed', channel: 'edge.a' });
      assert.deepEqual(await x.next(() => true, 5000), { type: 'received', channel: 'edge.a', count: 0 });
      assert.deepEqual(await x.next(() => true, 5000), { type: 'received', channel: 'edge.a', count: 0 });
      // One byte more: a slow consumer, closed with 1013.
      x.send({ type: 'subscribe', channel: 'edge.b' });
      x.sendRaw(frame('edge.b', 1024));
      x.sendRaw(frame('edge.b', 1025));
      assert.equal(await x.closed(5000), 1013);
    } finally {
      await node?.stop('SIGTERM');
      await proxy?.close();
    }
  });
});
