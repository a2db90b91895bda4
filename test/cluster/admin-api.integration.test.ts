import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { CloseCode } from '../../src/errors.js';
import type { AdminOverview } from '../../src/cluster/admin-answers.js';
import type { NodeView } from '../../src/cluster/admin-api.js';
import type { SessionView } from '../../src/cluster/registry.js';
import { startAgent } from './cluster-helpers.js';
import { adminApi, broadcast, opsToken, startServe, type ServeUnderTest } from './admin-helpers.js';
import { withSchema } from '../helpers/pg.js';
import { randomPrefix, testRedisUrl } from '../bus/redis-helpers.js';

type Overview = AdminOverview & { nodes: NodeView[] | null; at: number };
type Found = { sessions: SessionView[]; truncated: boolean };

/** The admin API's behaviour, the same on `serve` and on an agent with workers. */
async function exercise(port: number, expectedWorkers: number, workerRows: number): Promise<void> {
  const ops = await opsToken();
  // Refused without a token, and with a token that lacks the admin grant.
  for (const [method, path, body] of [
    ['GET', '/api/admin/overview', undefined],
    ['GET', '/api/admin/sessions', undefined],
    ['POST', '/api/admin/sessions/close', { session: 'x' }]
  ] as const) {
    assert.equal((await adminApi(port, path, { method, body })).status, 401, `${method} ${path} without a token`);
    assert.equal((await adminApi(port, path, { method, body, token: await makeToken('u', ['audit', 'broadcast']) })).status, 403, `${method} ${path} without admin`);
  }
  // Bad input: a clear 400.
  assert.equal((await adminApi(port, '/api/admin/sessions?limit=0', { token: ops })).status, 400);
  assert.equal((await adminApi(port, '/api/admin/sessions?limit=1001', { token: ops })).status, 400);
  assert.equal((await adminApi(port, '/api/admin/overview?channels=x', { token: ops })).status, 400);
  assert.equal((await adminApi(port, `/api/admin/sessions?q=${'a'.repeat(257)}`, { token: ops })).status, 400);
  // … and the bounds themselves are accepted.
  assert.equal((await adminApi(port, `/api/admin/sessions?q=${'a'.repeat(256)}&limit=1000`, { token: ops })).status, 200);
  assert.equal((await adminApi(port, '/api/admin/overview?channels=1000', { token: ops })).status, 200);
  assert.equal((await adminApi(port, '/api/admin/overview?channels=1001', { token: ops })).status, 400);
  assert.equal((await adminApi(port, '/api/admin/sessions/close', { method: 'POST', token: ops, body: '{"session":' })).status, 400);
  assert.equal((await adminApi(port, '/api/admin/sessions/close', { method: 'POST', token: ops, body: { session: 42 } })).status, 400);
  assert.equal((await adminApi(port, '/api/admin/sessions/close', { method: 'POST', token: ops, body: { session: 'x'.repeat(2000) } })).status, 413);
  // Closing a session nobody holds: 404.
  const unknown = await adminApi(port, '/api/admin/sessions/close', { method: 'POST', token: ops, body: { session: 'no-such-session' } });
  assert.equal(unknown.status, 404);

  const alice = await TestClient.connect(port, { token: await makeToken('alice') });
  const bob = await TestClient.connect(port, { token: await makeToken('bob') });
  try {
    await alice.subscribe('news');
    await bob.subscribe('news');
    await bob.subscribe('sport');
    const sessions = async (q: string): Promise<string[]> => {
      const r = await adminApi<Found>(port, `/api/admin/sessions?q=${encodeURIComponent(q)}`, { token: ops });
      assert.equal(r.status, 200);
      return r.body.sessions.map((s) => s.id).sort();
    };
    // The registry hears of subscriptions over IPC under an agent: wait for them.
    await waitFor('both sessions with their channels', async () => (await sessions('news')).length === 2 && (await sessions('sport')).length === 1);
    assert.deepEqual(await sessions('alice'), [alice.sessionId]);
    assert.deepEqual(await sessions('BOB'), [bob.sessionId], 'the search ignores case');
    assert.deepEqual(await sessions('127.0.0.1'), [alice.sessionId, bob.sessionId].sort(), 'by address');
    assert.deepEqual(await sessions(bob.sessionId), [bob.sessionId], 'by id');
    assert.deepEqual(await sessions('nobody-here'), []);
    if (expectedWorkers > 1) {
      const all = await adminApi<Found>(port, '/api/admin/sessions', { token: ops });
      assert.equal(new Set(all.body.sessions.map((x) => x.pid)).size, 2, 'placement put the two sessions on two workers');
    }
    const limited = await adminApi<Found>(port, '/api/admin/sessions?limit=1', { token: ops });
    assert.equal(limited.body.sessions.length, 1);
    assert.equal(limited.body.truncated, true);

    const overview = async (): Promise<Overview> => {
      const r = await adminApi<Overview>(port, '/api/admin/overview', { token: ops });
      assert.equal(r.status, 200);
      return r.body;
    };
    const before = await overview();
    assert.equal(before.workers.length, expectedWorkers);
    for (const w of before.workers) assert.equal(typeof w.restarts, 'number');
    assert.equal(before.sessions, 2);
    assert.deepEqual(before.channels.top, [
      { channel: 'news', members: 2 },
      { channel: 'sport', members: 1 }
    ]);
    assert.equal(before.channels.total, 2);
    assert.ok(before.nodes !== null && before.nodes.length === 1, JSON.stringify(before.nodes));
    assert.equal(before.nodes[0]!.workers, workerRows);
    // A broadcast to the two members moves the deliveries counter by two.
    assert.equal(await broadcast(port, 'news', { n: 1 }), 2);
    await alice.next((f) => f.type === 'event');
    await bob.next((f) => f.type === 'event');
    await waitFor('the deliveries to be counted', async () => (await overview()).counters.messagesOut >= before.counters.messagesOut + 2);
    assert.equal((await overview()).counters.sessionsOpened, 2, 'opens are counted as they happen');

    // Closed from the API, on whichever worker holds it: the client sees 4002.
    const closing = await adminApi(port, '/api/admin/sessions/close', { method: 'POST', token: ops, body: { session: bob.sessionId } });
    assert.equal(closing.status, 202, JSON.stringify(closing.body));
    assert.equal(await bob.closed(), CloseCode.CLOSED_BY_OPERATOR);
    await waitFor('the closed session to leave the list', async () => (await sessions('')).length === 1);
    await waitFor('the close to be counted', async () => (await overview()).counters.sessionsClosed >= 1);
    assert.equal((await adminApi(port, '/api/admin/sessions/close', { method: 'POST', token: ops, body: { session: bob.sessionId } })).status, 404);
    assert.equal(alice.closeCode, null, 'the other session stays open');
    // Under an agent the two sessions sit on two workers, so whichever worker answers
    // the two closes, one of them reaches a session on another worker.
    assert.equal((await adminApi(port, '/api/admin/sessions/close', { method: 'POST', token: ops, body: { session: alice.sessionId } })).status, 202);
    assert.equal(await alice.closed(), CloseCode.CLOSED_BY_OPERATOR);
  } finally {
    await Promise.allSettled([alice.closeCode === null ? alice.close() : null, bob.closeCode === null ? bob.close() : null]);
  }
}

describe('the admin API (/api/admin/*)', () => {
  test('on serve: guarded by the admin grant, searches, counts, closes', async () => {
    const s = await startServe();
    try {
      await exercise(s.port, 1, 0);
    } finally {
      await s.cleanup();
    }
  });

  test('on an agent with two workers: the worker that answers reaches the session on the other', async () => {
    const agent = await startAgent(['--workers', '2']);
    try {
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready'));
      await exercise(agent.port, 2, 2);
    } finally {
      await agent.cleanup();
    }
  });

  test('on an agent with --workers 0 (the agent holds the sessions itself)', async () => {
    const agent = await startAgent(['--workers', '0']);
    try {
      await exercise(agent.port, 1, 0);
    } finally {
      await agent.cleanup();
    }
  });

  test('a worker that crashes is replaced: its slot counts a restart and the counters do not go down', async () => {
    const agent = await startAgent(['--workers', '2']);
    const ops = await opsToken();
    try {
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready'));
      const c = await TestClient.connect(agent.port, { token: await makeToken('carol') });
      await c.subscribe('news');
      const overview = async (): Promise<Overview> => (await adminApi<Overview>(agent.port, '/api/admin/overview', { token: ops })).body;
      await waitFor('the session to be counted', async () => (await overview()).counters.sessionsOpened === 1);
      const before = await overview();
      const victim = before.workers.find((w) => w.sessions === 1)!;
      process.kill(victim.pid, 'SIGKILL');
      assert.equal(await c.closed(), 1006);
      await waitFor('the slot to get a new worker', async () => {
        const o = await overview();
        return o.workers.length === 2 && o.workers.every((w) => w.state === 'ready') && o.workers.some((w) => w.slot === victim.slot && w.pid !== victim.pid);
      }, 20000, 50);
      const after = await overview();
      assert.deepEqual(after.workers.map((w) => [w.slot, w.restarts]), [[0, victim.slot === 0 ? 1 : 0], [1, victim.slot === 1 ? 1 : 0]]);
      assert.equal(after.counters.sessionsOpened, 1);
      assert.equal(after.counters.sessionsClosed, 1, 'the lost session counts as ended');
      assert.ok(after.counters.messagesIn >= before.counters.messagesIn, 'the dead worker keeps its counts');
    } finally {
      await agent.cleanup();
    }
  });

  test('with --bus: the overview lists every live node of the shared database, on each node', async () => {
    const schema = await withSchema();
    const bus = ['--database', schema.url, '--bus', testRedisUrl(), '--bus-prefix', randomPrefix()];
    const nodes: ServeUnderTest[] = [];
    try {
      nodes.push(await startServe(bus));
      nodes.push(await startServe(bus));
      const ops = await opsToken();
      for (const n of nodes) {
        const r = await adminApi<Overview>(n.port, '/api/admin/overview', { token: ops });
        assert.equal(r.status, 200);
        assert.deepEqual(r.body.nodes!.map((x) => x.role), ['standalone', 'standalone']);
        assert.deepEqual(r.body.nodes!.map((x) => x.address).sort(), nodes.map((m) => `http://127.0.0.1:${m.port}`).sort());
      }
    } finally {
      for (const n of nodes) await n.cleanup();
      await schema.drop();
    }
  });

  test('the dashboard is served from the package at /admin/, with --public off too', async () => {
    const s = await startServe(['--public', 'off']);
    try {
      const page = await fetch(`http://127.0.0.1:${s.port}/admin/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      assert.match(await page.text(), /zenconn admin/);
      const js = await fetch(`http://127.0.0.1:${s.port}/admin/dashboard.js`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type') ?? '', /javascript/);
      const bare = await fetch(`http://127.0.0.1:${s.port}/admin`, { redirect: 'manual' });
      assert.equal(bare.status, 301);
      assert.equal(bare.headers.get('location'), '/admin/');
      // Only the package's files: no listing, no walking out.
      assert.equal((await fetch(`http://127.0.0.1:${s.port}/admin/nope.js`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${s.port}/admin/../package.json`)).status, 404);
    } finally {
      await s.cleanup();
    }
  });
});
