import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { parsePrometheus, type PromExposition } from '../helpers/prometheus.js';
import { encodeClientFrame } from '../../src/protocol/client-codec.js';
import type { ClientFrame } from '../../src/protocol/frames.js';
import { admin, freePortRun, httpGet, startAgent } from '../cluster/cluster-helpers.js';
import { runZen } from '../helpers/process.js';
import { tempDir } from '../helpers/server.js';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';

/** The metrics the issue names, with their types and the labels they carry. */
const TABLE: Array<[string, string, string[]]> = [
  ['zenconn_sessions', 'gauge', ['protocol']],
  ['zenconn_sessions_opened_total', 'counter', []],
  ['zenconn_sessions_closed_total', 'counter', ['code']],
  ['zenconn_messages_received_total', 'counter', ['type']],
  ['zenconn_deliveries_total', 'counter', []],
  ['zenconn_bytes_sent_total', 'counter', []],
  ['zenconn_bytes_received_total', 'counter', []],
  ['zenconn_slow_consumer_closes_total', 'counter', []],
  ['zenconn_auth_failures_total', 'counter', ['reason']],
  ['zenconn_rate_limited_total', 'counter', []],
  ['zenconn_channels', 'gauge', []],
  ['zenconn_audit_queue_rows', 'gauge', []],
  ['zenconn_audit_journal_bytes', 'gauge', []],
  ['zenconn_audit_commit_seconds', 'histogram', []],
  ['zenconn_bus_up', 'gauge', []]
];

/** Checks the table's names, types and labels (`extra`: labels every series also has, e.g. `worker`). */
function assertTable(m: PromExposition, extra: string[] = []): void {
  for (const [name, type, labels] of TABLE) {
    assert.equal(m.types.get(name), type, `${name} is a ${type}`);
    const series = type === 'histogram' ? m.find(`${name}_count`) : m.find(name);
    // Close codes appear as sessions close with them.
    if (name !== 'zenconn_sessions_closed_total') assert.ok(series.length > 0, `${name} has a series`);
    for (const s of series) assert.deepEqual(Object.keys(s.labels).sort(), [...labels, ...extra].sort(), `${name} labels`);
  }
  // The event-loop lag and prom-client's default process metrics.
  for (const name of ['nodejs_eventloop_lag_seconds', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
    assert.ok(m.find(name).length > 0, `${name} is there`);
  }
}

async function scrape(port: number, token: string | null = null): Promise<PromExposition> {
  const res = await httpGet(port, '/metrics', token === null ? {} : { authorization: `Bearer ${token}` });
  assert.equal(res.status, 200, res.body);
  return parsePrometheus(res.body);
}

describe('Prometheus metrics', () => {
  test('serve: a scrape counts the sessions, messages, deliveries, closes and auth failures the test made', async () => {
    const srv = await startServer();
    const clients: TestClient[] = [];
    try {
      let bytesIn = 0;
      const send = (c: TestClient, frame: ClientFrame): void => {
        bytesIn += Buffer.byteLength(encodeClientFrame(c.protocol, frame));
        c.send(frame);
      };
      const a = await TestClient.connect(srv.port);
      // b has a token (its refresh is verified; an anonymous session's is refused unread).
      const b = await TestClient.connect(srv.port, { token: await makeToken('bob') });
      const bin = await TestClient.connect(srv.port, { protocol: 'bin' });
      clients.push(a, b, bin);
      for (const c of clients) {
        send(c, { type: 'subscribe', channel: 'room' });
        await c.nextOf('subscribed');
      }
      for (let i = 0; i < 2; i++) {
        send(a, { type: 'broadcast', channel: 'room', data: { i } });
        await a.nextOf('received');
      }
      for (const c of [b, bin]) for (let i = 0; i < 2; i++) await c.nextOf('event');
      // A frame that does not decode.
      b.sendRaw('{"type":"nonsense"}');
      bytesIn += Buffer.byteLength('{"type":"nonsense"}');
      await b.nextOf('error');
      // A refresh (refused: not a token, an auth failure too) and a presence question are counted by their type.
      send(b, { type: 'refresh', token: 'not-a-jwt' });
      await b.nextOf('error');
      send(b, { type: 'presence', channel: 'room' });
      await b.nextOf('presence');
      assert.equal(await bin.close(), 1000);
      // Refused upgrades: a token that does not verify, an expired one.
      await assert.rejects(TestClient.connect(srv.port, { token: 'not-a-jwt' }), /401/);
      await assert.rejects(TestClient.connect(srv.port, { token: await makeToken('late', [], { exp: Math.floor(Date.now() / 1000) - 3600 }) }), /401/);
      // /metrics itself: 401 without a token, 403 without `admin` (both counted too).
      assert.equal((await httpGet(srv.port, '/metrics')).status, 401);
      assert.equal((await httpGet(srv.port, '/metrics', { authorization: `Bearer ${await makeToken('pub', ['publish'])}` })).status, 403);
      // POST /api/broadcast without the grant: forbidden.
      const api = await fetch(`http://127.0.0.1:${srv.port}/api/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await makeToken('nobody')}`, 'content-type': 'application/json' },
        body: '{"channel":"room","data":1}'
      });
      assert.equal(api.status, 403);

      let m = await scrape(srv.port, await admin());
      await waitFor('the close to be counted', async () => {
        m = await scrape(srv.port, await admin());
        return m.sum('zenconn_sessions_closed_total') === 1;
      });
      assertTable(m);
      assert.equal(m.sum('zenconn_sessions', { protocol: 'json' }), 2);
      assert.equal(m.sum('zenconn_sessions', { protocol: 'bin' }), 0);
      assert.equal(m.sum('zenconn_sessions_opened_total'), 3);
      assert.equal(m.sum('zenconn_sessions_closed_total', { code: '1000' }), 1);
      assert.equal(m.sum('zenconn_messages_received_total', { type: 'subscribe' }), 3);
      assert.equal(m.sum('zenconn_messages_received_total', { type: 'broadcast' }), 2);
      assert.equal(m.sum('zenconn_messages_received_total', { type: 'invalid' }), 1);
      assert.equal(m.sum('zenconn_messages_received_total', { type: 'unsubscribe' }), 0);
      assert.equal(m.sum('zenconn_messages_received_total', { type: 'refresh' }), 1);
      assert.equal(m.sum('zenconn_messages_received_total', { type: 'presence' }), 1);
      // Two broadcasts to two other members.
      assert.equal(m.sum('zenconn_deliveries_total'), 4);
      assert.equal(m.sum('zenconn_bytes_received_total'), bytesIn);
      assert.ok(m.sum('zenconn_bytes_sent_total') > 0);
      // The upgrade with a token that does not verify, and the refresh with one.
      assert.equal(m.sum('zenconn_auth_failures_total', { reason: 'invalid' }), 2);
      assert.equal(m.sum('zenconn_auth_failures_total', { reason: 'expired' }), 1);
      assert.equal(m.sum('zenconn_auth_failures_total', { reason: 'missing' }), 1);
      assert.equal(m.sum('zenconn_auth_failures_total', { reason: 'forbidden' }), 2);
      assert.equal(m.sum('zenconn_rate_limited_total'), 0);
      assert.equal(m.sum('zenconn_slow_consumer_closes_total'), 0);
      assert.equal(m.sum('zenconn_channels'), 1);
      assert.equal(m.sum('zenconn_bus_up'), 1);
      // The audit trail (SQLite) committed the rows of all this.
      assert.ok(m.sum('zenconn_audit_commit_seconds_count') > 0);
      assert.equal(m.sum('zenconn_audit_commit_seconds_bucket', { le: '+Inf' }), m.sum('zenconn_audit_commit_seconds_count'));
    } finally {
      for (const c of clients) c.ws.terminate();
      await srv.stop();
      rmSync(srv.dir, { recursive: true, force: true });
    }
  });

  test('serve: rate-limited frames and slow-consumer closes are counted', async () => {
    const srv = await startServer({ 'rate-limit-per-sec': '1', 'rate-limit-burst': '2', 'max-buffered-bytes': '65536' });
    const clients: TestClient[] = [];
    try {
      const chatty = await TestClient.connect(srv.port);
      clients.push(chatty);
      for (let i = 0; i < 6; i++) chatty.send({ type: 'unsubscribe', channel: `c${i}` });
      // Every frame gets an answer: `unsubscribed`, or the `rate limited` error.
      await waitFor('six answers', () => chatty.frames.filter((f) => f.type === 'unsubscribed' || f.type === 'error').length === 6);
      const limited = chatty.frames.filter((f) => f.type === 'error' && f.errors.includes('rate limited')).length;
      assert.ok(limited >= 1, 'the burst of 2 refused some of the 6 frames');

      const slow = await TestClient.connect(srv.port);
      clients.push(slow);
      await slow.subscribe('firehose');
      (slow.ws as unknown as { _socket: Socket })._socket.pause();
      const pub = await TestClient.connect(srv.port, { token: await makeToken('backend', ['publish']) });
      clients.push(pub);
      const session = [...srv.node.hub.sessions.values()].find((s) => s.id === slow.sessionId)!;
      for (let i = 0; i < 200 && session.state === 'open'; i++) {
        pub.send({ type: 'broadcast', channel: 'firehose', data: 'y'.repeat(30000) });
        await pub.nextOf('received');
      }
      assert.equal(session.closeCode, 1013);
      // Its socket is paused: the close handshake ends when the client goes.
      slow.ws.terminate();
      let m = await scrape(srv.port, await admin());
      await waitFor('the 1013 close to be counted', async () => {
        m = await scrape(srv.port, await admin());
        return m.sum('zenconn_sessions_closed_total', { code: '1013' }) === 1;
      });
      assert.equal(m.sum('zenconn_rate_limited_total'), limited);
      assert.equal(m.sum('zenconn_slow_consumer_closes_total'), 1);
    } finally {
      for (const c of clients) c.ws.terminate();
      await srv.stop();
      rmSync(srv.dir, { recursive: true, force: true });
    }
  });

  test('serve: --metrics-port answers GET /metrics without a token, and nothing else', async () => {
    const metricsPort = await freePortRun(1);
    const srv = await startServer({ 'metrics-port': String(metricsPort) });
    try {
      const c = await TestClient.connect(srv.port);
      const m = await scrape(metricsPort);
      assertTable(m);
      assert.equal(m.sum('zenconn_sessions_opened_total'), 1);
      assert.equal((await httpGet(metricsPort, '/agent/workers')).status, 404);
      assert.equal((await httpGet(metricsPort, '/')).status, 404);
      // The main port still wants the admin grant.
      assert.equal((await httpGet(srv.port, '/metrics')).status, 401);
      c.ws.terminate();
    } finally {
      await srv.stop();
      rmSync(srv.dir, { recursive: true, force: true });
    }
  });

  test('--metrics-port: out of range, or taken, stops the start with a line naming it', async () => {
    const dir = tempDir();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const base = ['serve', '--port', '0', '--host', '127.0.0.1', '--database', `sqlite:${join(dir, 'z.db')}`, '--spool-dir', join(dir, 'spool'), '--audit-journal-dir', join(dir, 'journal'), '--access-log', 'off', '--log-level', 'silent'];
      const range = await runZen([...base, '--metrics-port', '65536']);
      assert.equal(range.code, 2);
      assert.match(range.stderr, /--metrics-port: must be at most 65535/);
      const inUse = await runZen([...base, '--metrics-port', String((taken.address() as { port: number }).port)]);
      assert.notEqual(inUse.code, 0);
      assert.match(inUse.stderr, /--metrics-port \d+ on 127\.0\.0\.1: listen EADDRINUSE/);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('agent with --workers 0: its one process answers, on the main port and on --metrics-port', async () => {
    const metricsPort = await freePortRun(1);
    const agent = await startAgent(['--workers', '0', '--metrics-port', String(metricsPort)]);
    try {
      const c = await TestClient.connect(agent.port);
      for (const m of [await scrape(agent.port, await admin()), await scrape(metricsPort)]) {
        assertTable(m);
        assert.equal(m.sum('zenconn_sessions_opened_total'), 1);
        assert.equal(m.find('zenconn_worker_scrape_up').length, 0);
      }
      c.ws.terminate();
    } finally {
      await agent.cleanup();
      rmSync(agent.dir, { recursive: true, force: true });
    }
  });

  test('agent with two workers: one scrape covers both, labelled by worker; one that does not answer shows scrape_up 0', async () => {
    const metricsPort = await freePortRun(1);
    const agent = await startAgent(['--workers', '2', '--metrics-port', String(metricsPort)]);
    const clients: TestClient[] = [];
    try {
      const workers = await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready'), 20000);
      for (let i = 0; i < 4; i++) clients.push(await TestClient.connect(agent.port));
      for (const c of clients) await c.subscribe('room');
      const [sender, ...others] = clients;
      for (let i = 0; i < 3; i++) {
        sender!.send({ type: 'broadcast', channel: 'room', data: i });
        await sender!.nextOf('received');
      }
      for (const c of others) for (let i = 0; i < 3; i++) await c.nextOf('event');

      // On the main port: admin only.
      assert.equal((await httpGet(agent.port, '/metrics')).status, 401);
      assert.equal((await httpGet(agent.port, '/metrics', { authorization: `Bearer ${await makeToken('pub', ['publish'])}` })).status, 403);
      const viaPort = await scrape(agent.port, await admin());
      // On --metrics-port: no token.
      const m = await scrape(metricsPort);
      for (const x of [viaPort, m]) {
        assertTable(x, ['worker']);
        assert.equal(x.sum('zenconn_worker_scrape_up', { worker: '0' }), 1);
        assert.equal(x.sum('zenconn_worker_scrape_up', { worker: '1' }), 1);
      }
      assert.equal(m.sum('zenconn_sessions_opened_total'), 4);
      assert.equal(m.sum('zenconn_messages_received_total', { type: 'subscribe' }), 4);
      assert.equal(m.sum('zenconn_messages_received_total', { type: 'broadcast' }), 3);
      // Three broadcasts, each to the three other members, on whichever worker they are.
      assert.equal(m.sum('zenconn_deliveries_total'), 9);
      // Each worker's series carry its own figures: its sessions as the agent placed them.
      const placed = await agent.sessions();
      for (const w of workers) {
        const here = placed.filter((s) => s.pid === w.pid).length;
        assert.equal(m.sum('zenconn_sessions', { worker: String(w.slot) }), here, `worker ${w.slot}`);
        assert.equal(m.sum('zenconn_sessions_opened_total', { worker: String(w.slot) }), here, `worker ${w.slot}`);
      }
      // The agent's own process metrics, and its own audit writer's (the rows it writes for a dead worker).
      assert.ok(m.find('process_resident_memory_bytes', { worker: 'agent' }).length === 1);
      assert.equal(m.find('zenconn_audit_queue_rows', { worker: 'agent' }).length, 1);
      assert.equal(m.find('zenconn_audit_commit_seconds_count', { worker: 'agent' }).length, 1);

      // A worker that does not answer (stopped) is left out and shows as down; back, it is in again.
      const stopped = workers[1]!;
      process.kill(stopped.pid, 'SIGSTOP');
      try {
        const down = await scrape(metricsPort);
        assert.equal(down.sum('zenconn_worker_scrape_up', { worker: String(stopped.slot) }), 0);
        assert.equal(down.sum('zenconn_worker_scrape_up', { worker: String(workers[0]!.slot) }), 1);
        assert.equal(down.find('zenconn_sessions_opened_total', { worker: String(stopped.slot) }).length, 0);
        assert.equal(down.find('zenconn_sessions_opened_total', { worker: String(workers[0]!.slot) }).length, 1);
      } finally {
        process.kill(stopped.pid, 'SIGCONT');
      }
      const back = await scrape(metricsPort);
      assert.equal(back.sum('zenconn_worker_scrape_up', { worker: String(stopped.slot) }), 1);
      assert.equal(back.sum('zenconn_sessions_opened_total'), 4);
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
      rmSync(agent.dir, { recursive: true, force: true });
    }
  });
});
