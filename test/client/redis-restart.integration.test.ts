/**
 * Issue #13 §6.4 through the client library: two `serve` nodes on one Redis, the
 * publisher on one, the subscriber on the other (through a proxy). The subscriber is cut
 * off while Redis is restarted (it loses the channel's sequence: a new epoch). Back, the
 * library resubscribes from its old position and is told honestly: `unrecovered`, with
 * the new epoch; the live events after it arrive in order, without a gap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ChannelEvent, type UnrecoveredInfo } from '../../src/client/index.js';
import { getJson, randomPrefix, serveOnBus, startRedis } from '../bus/redis-helpers.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { NodeWebSocket, range } from './client-helpers.js';

test('Redis restarted while the subscriber is away: `unrecovered` with the new epoch, then every live event in order', async () => {
  const redis = await startRedis();
  let redis2: Awaited<ReturnType<typeof startRedis>> | null = null;
  const prefix = randomPrefix();
  const [z1, z2] = await Promise.all([serveOnBus(redis.url, prefix), serveOnBus(redis.url, prefix)]);
  const proxy = await startTcpProxy({ port: z2.port });
  const backoff = { baseMs: 50, capMs: 300 };
  const publisher = connect(`ws://127.0.0.1:${z1.port}/`, { protocol: 'bin', token: await makeToken('backend', ['publish']), WebSocket: NodeWebSocket, backoff });
  const subscriber = connect(`ws://127.0.0.1:${proxy.port}/`, { WebSocket: NodeWebSocket, backoff });
  try {
    const got: ChannelEvent[] = [];
    const unrecovered: UnrecoveredInfo[] = [];
    const sub = subscriber.subscribe('restart', (e) => got.push(e));
    sub.on('unrecovered', (u) => unrecovered.push(u));
    const trace: unknown[] = [];
    sub.on('subscribed', (x) => trace.push(x));
    sub.on('error', (x) => trace.push(x));
    subscriber.on('state', (x) => trace.push(x));
    await waitFor('the subscription', () => sub.state === 'subscribed');
    await publisher.ready();
    for (const i of range(0, 10)) await publisher.broadcast('restart', i);
    await waitFor('10 events', () => got.length === 10);
    const oldEpoch = got[0]!.epoch!;
    const lastBefore = got[9]!.offset!;

    proxy.cut('refuse');
    await waitFor('the subscriber to see the drop', () => subscriber.state !== 'connected');
    await redis.kill();
    redis2 = await startRedis(redis.port);
    // Publish until the bus takes events again (refusals are allowed while Redis is away).
    await waitFor('a broadcast accepted after the restart', () => publisher.broadcast('restart', 'probe').then(() => true, () => false), 20_000, 100);

    // The subscriber's node back on Redis too: then it can read where the channel is and say so.
    await waitFor("the subscriber's node ready", async () => (await getJson(z2.port, '/readyz')).status === 200, 20_000, 100);
    proxy.restore();
    await waitFor('the subscriber told that the gap is lost', () => unrecovered.length === 1, 20_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify({ trace, got: got.slice(10), sub: sub.state })}`);
    });
    const u = unrecovered[0]!;
    assert.equal(u.reason, 'server', 'the server said recovered:false');
    assert.deepEqual(u.since, { offset: lastBefore, epoch: oldEpoch });
    assert.notEqual(u.epoch, oldEpoch, 'a new epoch');
    await waitFor('subscribed again', () => sub.state === 'subscribed');
    for (const i of range(100, 20)) await publisher.broadcast('restart', i);
    await waitFor('the 20 live events', () => got.filter((e) => typeof e.data === 'number' && e.data >= 100).length === 20);

    const after = got.slice(10);
    assert.deepEqual(after.map((e) => e.data), range(100, 20), 'live events after the notice, in order, none lost');
    assert.ok(after.every((e) => e.epoch === u.epoch));
    assert.deepEqual(after.map((e) => e.offset), range(u.offset! + 1, 20), 'gapless from where the notice said the subscription resumed');
    assert.equal(subscriber.reconnects, 1);
  } finally {
    subscriber.close();
    publisher.close();
    await proxy.close();
    await Promise.all([z1.stop('SIGTERM'), z2.stop('SIGTERM')]);
    await redis2?.kill();
    await redis.kill();
  }
});
