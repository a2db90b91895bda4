import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TestClient } from '../helpers/client.js';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { tempDir, TEST_JWT_SECRET, TEST_CHANNEL_SECRET } from '../helpers/server.js';
import { withSchema } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';
import { startAgent } from './cluster-helpers.js';
import { randomPrefix, serveOnBus, testRedisUrl } from '../bus/redis-helpers.js';

/**
 * `received.count` is exact: once every recipient had its `subscribed`, a broadcast's
 * count is the number of sessions it goes to, whichever process each one is on. Each
 * round, ten sessions subscribe to a fresh channel and each waits for its own
 * `subscribed`; then one of them broadcasts. A child process burns a core meanwhile, so
 * the processes are descheduled at random points, where a count that lags behind the
 * `subscribed` answer shows (issue #12, item 1).
 */
const SESSIONS = 10;
const ROUNDS = 40;

/** A child process that keeps one core busy until killed. */
function burnCore(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
  child.on('error', () => undefined);
  return child;
}

/**
 * Runs the rounds over `clients` (`where[i]` names the process of `clients[i]`); returns
 * the rounds whose count was not SESSIONS - 1, as `round: count`. The last session to
 * subscribe is on another process than the sender (when there is one), and the sender
 * broadcasts as soon as that session has its `subscribed`: the narrowest window the
 * promise covers.
 */
async function rounds(clients: TestClient[], where: string[], tag: string): Promise<string[]> {
  const wrong: string[] = [];
  const n = clients.length;
  for (let r = 0; r < ROUNDS; r++) {
    const channel = `count.${tag}.${r}`;
    const s = r % n;
    let l = (s + 1) % n;
    for (let k = 1; k < n; k++) {
      const i = (s + k) % n;
      if (where[i] !== where[s]) {
        l = i;
        break;
      }
    }
    const sender = clients[s]!;
    const late = clients[l]!;
    const early = await Promise.all(clients.filter((c) => c !== late).map((c) => c.subscribe(channel)));
    for (const a of early) assert.equal(a.type, 'subscribed');
    assert.equal((await late.subscribe(channel)).type, 'subscribed');
    sender.send({ type: 'broadcast', channel, data: r });
    const received = await sender.next((f) => f.type === 'received' && f.channel === channel, 10000);
    assert.equal(received.type, 'received');
    // Every event arrives (the count is what may lag): taken, so the next round starts clean.
    await Promise.all(clients.filter((c) => c !== sender).map((c) => c.next((f) => f.type === 'event' && f.channel === channel, 10000)));
    if (received.count !== n - 1) wrong.push(`${r}: ${received.count}`);
  }
  return wrong;
}

/** Connects SESSIONS clients, the i-th to `ports[i % ports.length]`. */
function connectAll(ports: number[]): Promise<TestClient[]> {
  return Promise.all(Array.from({ length: SESSIONS }, (_, i) => TestClient.connect(ports[i % ports.length]!)));
}

describe('received.count is exact under load', () => {
  test('one process (serve)', async () => {
    const dir = tempDir();
    const zen: ZenProcess = await startZen([
      'serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', `sqlite:${join(dir, 'z.db')}`,
      '--access-log', 'off', '--spool-dir', join(dir, 'spool'), '--audit-journal-dir', join(dir, 'journal'),
      '--jwt-secret', TEST_JWT_SECRET, '--channel-secret', TEST_CHANNEL_SECRET, '--log-level', 'warn'
    ]);
    const busy = burnCore();
    let clients: TestClient[] = [];
    try {
      clients = await connectAll([zen.port]);
      assert.deepEqual(await rounds(clients, clients.map(() => 'serve'), 'serve'), [], `rounds with a wrong count (of ${ROUNDS})`);
    } finally {
      busy.kill('SIGKILL');
      for (const c of clients) c.ws.terminate();
      await zen.stop('SIGTERM');
    }
  });

  test('an agent with two workers', async () => {
    const agent = await startAgent(['--workers', '2']);
    const busy = burnCore();
    let clients: TestClient[] = [];
    try {
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready'), 20000);
      clients = await connectAll([agent.port]);
      // Placement spreads them: the counts must cross between the workers.
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.sessions > 0));
      const pidOf = new Map((await agent.sessions()).map((v) => [v.id, String(v.pid)]));
      const where = clients.map((c) => pidOf.get(c.sessionId) ?? '?');
      assert.deepEqual(await rounds(clients, where, 'agent'), [], `rounds with a wrong count (of ${ROUNDS})`);
    } finally {
      busy.kill('SIGKILL');
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  test('two serve nodes on one Redis bus and one PostgreSQL database', async () => {
    const schema = await withSchema();
    const prefix = randomPrefix();
    const nodes: ZenProcess[] = [];
    const busy = burnCore();
    let clients: TestClient[] = [];
    try {
      nodes.push(...(await Promise.all([0, 1].map(() => serveOnBus(testRedisUrl(), prefix, ['--database', schema.url, '--log-level', 'warn'])))));
      clients = await connectAll(nodes.map((n) => n.port));
      // Both nodes know each other before counting starts (a node that joins later is another story).
      await waitFor('each node to count the other', async () => {
        const [a, b] = clients;
        await Promise.all([a!.subscribe('count.hello'), b!.subscribe('count.hello')]);
        a!.send({ type: 'broadcast', channel: 'count.hello', data: 'ping' });
        const r = await a!.next((f) => f.type === 'received' && f.channel === 'count.hello', 5000);
        return r.type === 'received' && r.count === 1;
      });
      for (const c of clients.slice(0, 2)) c.frames.length = 0;
      assert.deepEqual(await rounds(clients, clients.map((_, i) => String(i % nodes.length)), 'redis'), [], `rounds with a wrong count (of ${ROUNDS})`);
    } finally {
      busy.kill('SIGKILL');
      for (const c of clients) c.ws.terminate();
      await Promise.all(nodes.map((n) => n.stop('SIGTERM')));
      await schema.drop();
    }
  });
});
