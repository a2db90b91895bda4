import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { withSchema } from '../helpers/pg.js';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { tempDir, TEST_CHANNEL_SECRET, TEST_JWT_SECRET } from '../helpers/server.js';
import { startAgent } from '../cluster/cluster-helpers.js';
import { randomPrefix, testRedisUrl } from '../bus/redis-helpers.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { assertSequence, connect, publishMany, subscribeAt, takeEvents } from './history-helpers.js';

type History = Extract<ServerFrame, { type: 'history' }>;

/**
 * With a 5-event hot window, history and recovery reaching back 50 events come complete
 * from the audit trail, though the sequencer (the agent, Redis) is another process than
 * the one that records the rows. The first 25 events have no subscriber anywhere (the
 * publisher's process learns the position from the sequencer's answer alone), the next
 * 25 have one beside the publisher (the event comes back to it).
 */
async function olderThanTheWindow(pubPort: number, subPort: number, clients: TestClient[]): Promise<void> {
  const channel = `old-${Math.random().toString(36).slice(2, 8)}`;
  const pub = await connect(pubPort, await makeToken('backend', ['publish']));
  clients.push(pub);
  const first = await connect(subPort);
  clients.push(first);
  const epoch = (await subscribeAt(first, channel)).epoch!;
  await first.close();
  await publishMany(pub, channel, 25);
  const near = await connect(pubPort);
  clients.push(near);
  const sn = await subscribeAt(near, channel);
  assert.deepEqual([sn.offset, sn.epoch], [25, epoch]);
  await publishMany(pub, channel, 25, 25);

  const h = await connect(subPort, undefined, 'bin');
  clients.push(h);
  // The audit rows reach the database in batches: ask until they are all there.
  let answer: History | null = null;
  await waitFor('the 50 events in the audit trail, with their positions', async () => {
    h.send({ type: 'history', channel, since: { offset: 0, epoch }, limit: 100 });
    answer = await h.nextOf('history');
    return answer.complete;
  });
  const got = answer as unknown as History;
  assert.deepEqual([got.offset, got.epoch, got.events.length], [50, epoch, 50]);
  assertSequence(got.events, 1, epoch, 'audit + window');
  assert.deepEqual(got.events.map((e) => e.data), Array.from({ length: 50 }, (_, i) => ({ n: i })));
  assert.equal(new Set(got.events.map((e) => e.id)).size, 50, 'each event once');

  // Recovery from the start: every event once, in order, then live.
  const back = await connect(subPort);
  clients.push(back);
  const r = await subscribeAt(back, channel, { offset: 0, epoch });
  assert.deepEqual([r.recovered, r.offset, r.epoch], [true, 50, epoch]);
  const replay = await takeEvents(back, channel, 50);
  assertSequence(replay, 1, epoch, 'recovered');
  assert.deepEqual(replay.map((e) => e.id), got.events.map((e) => e.id));
  await publishMany(pub, channel, 1, 50);
  assertSequence(await takeEvents(back, channel, 1), 51, epoch, 'live');
  assert.deepEqual(await back.quiet(100), []);
}

/** `zenconn serve` on the Redis bus and a shared database, with a 5-event hot window. */
function serveOn(database: string, prefix: string, dirs: string[]): Promise<ZenProcess> {
  const dir = tempDir();
  dirs.push(dir);
  return startZen(
    [
      'serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', database,
      '--access-log', 'off', '--spool-dir', join(dir, 'spool'), '--audit-journal-dir', join(dir, 'journal'),
      '--jwt-secret', TEST_JWT_SECRET, '--channel-secret', TEST_CHANNEL_SECRET, '--bus', testRedisUrl(), '--bus-prefix', prefix,
      '--history-size', '5', '--log-level', 'warn'
    ],
    { timeoutMs: 20000 }
  );
}

describe('history older than the hot window, from the audit trail, in cluster modes', () => {
  test('an agent with 2 workers on SQLite: the agent sequences, reads the older events from its store', async () => {
    const agent = await startAgent(['--workers', '2', '--history-size', '5']);
    const clients: TestClient[] = [];
    try {
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready'));
      // Whichever worker the clients land on, the agent answers the reads.
      await olderThanTheWindow(agent.port, agent.port, clients);
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  test('two serve nodes on Redis and one PostgreSQL: Redis sequences, the nodes read the older events from the shared database', async () => {
    const schema = await withSchema();
    const prefix = randomPrefix();
    const dirs: string[] = [];
    const clients: TestClient[] = [];
    let nodes: ZenProcess[] = [];
    try {
      nodes = await Promise.all([serveOn(schema.url, prefix, dirs), serveOn(schema.url, prefix, dirs)]);
      await olderThanTheWindow(nodes[0]!.port, nodes[1]!.port, clients);
    } finally {
      for (const c of clients) c.ws.terminate();
      await Promise.all(nodes.map((z) => z.stop('SIGTERM')));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await schema.drop();
    }
  });
});
