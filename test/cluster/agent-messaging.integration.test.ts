import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestClient } from '../helpers/client.js';
import { runZen } from '../helpers/process.js';
import { makeToken } from '../helpers/tokens.js';
import { selfSignedCert, tempDir, TEST_CHANNEL_SECRET } from '../helpers/server.js';
import { signChannel } from '../../src/auth/channel-signature.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { admin, eventData, freePortRun, placement, sqliteRows, startAgent } from './cluster-helpers.js';
import { waitFor } from '../helpers/wait.js';

type EventFrame = Extract<ServerFrame, { type: 'event' }>;

describe('zenconn agent: placement, registry and messaging across workers', () => {
  test('ten clients land 5 and 5; status shows it; channel, *, HTTP and private traffic crosses workers once', async () => {
    const agent = await startAgent(['--workers', '2']);
    const clients: TestClient[] = [];
    try {
      const broadcaster = await makeToken('boss', ['broadcast', 'private']);
      clients.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => TestClient.connect(agent.port, { token: i === 0 ? broadcaster : undefined, protocol: i % 3 === 0 ? 'bin' : 'json' })))));
      const workers = await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.sessions === 5), 1000);
      assert.deepEqual(workers.map((w) => w.state), ['ready', 'ready']);

      // No token: over the control socket, found from the same --spool-dir.
      const status = await runZen(['status', '--port', String(agent.port), '--host', '127.0.0.1', '--spool-dir', join(agent.dir, 'spool')]);
      assert.equal(status.code, 0, status.stderr);
      const rows = status.stdout.split('\n').filter((l) => /^\d+\s+\d+\s+ready/.test(l));
      assert.equal(rows.length, 2, status.stdout);
      for (const [i, w] of workers.entries()) assert.match(rows[i]!, new RegExp(`^${w.slot}\\s+${w.pid}\\s+ready\\s+\\S+\\s+5\\s`));
      assert.match(status.stdout, /^total\s+10\s/m);

      // Everyone joins `room`; the registry knows within a second.
      await Promise.all(clients.map((c) => c.subscribe('room')));
      await waitFor('the registry to list 10 members of room', async () => (await agent.sessions('?channel=room')).length === 10, 1000);
      const pids = await placement(agent, clients);
      assert.equal(new Set(pids).size, 2);

      // A channel broadcast: every other member once, the sender's count covers both workers.
      const sender = clients[1]!;
      sender.send({ type: 'broadcast', channel: 'room', data: { n: 1 } });
      assert.equal((await sender.nextOf('received')).count, 9);
      for (const c of clients) {
        if (c === sender) continue;
        const e = (await c.nextOf('event')) as EventFrame;
        assert.deepEqual(e.data, { n: 1 });
        assert.equal(e.from, sender.sessionId);
      }
      // `*` from a client holding `broadcast`.
      clients[0]!.send({ type: 'broadcast', channel: '*', data: 'all' });
      assert.equal((await clients[0]!.nextOf('received')).count, 9);
      for (const c of clients.slice(1)) assert.equal(((await c.nextOf('event')) as EventFrame).channel, '*');
      // The HTTP API, answered by whichever worker gets the request.
      const res = await fetch(`http://127.0.0.1:${agent.port}/api/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await makeToken('app', ['publish'])}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'room', data: 'from http' })
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { count: number }).count, 10);
      for (const c of clients) assert.equal(((await c.nextOf('event')) as EventFrame).from, null);
      // Nothing arrived twice.
      for (const c of clients) assert.deepEqual((await c.quiet(100)).filter((f) => f.type === 'event'), []);

      // Order: a burst from one sender reaches a member on the other worker in order, once each.
      const far = clients.find((_, i) => pids[i] !== pids[1])!;
      for (let i = 0; i < 150; i++) sender.send({ type: 'broadcast', channel: 'room', data: i });
      const got: unknown[] = [];
      while (got.length < 150) got.push(((await far.nextOf('event')) as EventFrame).data);
      assert.deepEqual(got, Array.from({ length: 150 }, (_, i) => i));
      await waitFor('the burst to reach every member', () =>
        clients.every((c) => c === sender || c === far || eventData(c).filter((d) => typeof d === 'number').length >= 150)
      );
      for (const c of clients) c.frames.splice(0);

      // Private channel across workers: joined and left notices reach the other side.
      const a = clients[0]!; // holds `private`
      const b = clients.find((_, i) => pids[i] !== pids[0])!;
      assert.equal((await a.subscribe('private.team')).type, 'subscribed');
      const signed = signChannel(TEST_CHANNEL_SECRET, b.sessionId, 'private.team');
      assert.equal((await b.subscribe('private.team', signed)).type, 'subscribed');
      const joined = await a.nextOf('joined');
      assert.deepEqual(joined.data, { session: b.sessionId, user: null });
      b.send({ type: 'unsubscribe', channel: 'private.team' });
      const left = await a.nextOf('left');
      assert.deepEqual(left.data, { session: b.sessionId, user: null });

      // The registry follows unsubscribe and close.
      b.send({ type: 'unsubscribe', channel: 'room' });
      await waitFor('room to have 9 members', async () => (await agent.sessions('?channel=room')).length === 9, 1000);
      await clients.find((c) => c !== a && c !== b)!.close();
      await waitFor('9 sessions', async () => (await agent.sessions()).length === 9, 1000);
      const byUser = await agent.sessions('?user=boss');
      assert.deepEqual(byUser.map((s) => s.id), [a.sessionId]);
      assert.equal((await fetch(`http://127.0.0.1:${agent.port}/agent/sessions`)).status, 401);
      assert.equal((await fetch(`http://127.0.0.1:${agent.port}/agent/sessions`, { headers: { authorization: `Bearer ${await makeToken('x', ['publish'])}` } })).status, 403);
      // Both refusals are in the audit trail, written by the worker that answered.
      const refusals = async () =>
        sqliteRows(agent.database)
          .system.filter((r) => r.type === 'http.refused')
          .map((r) => ({ user: r.user_id, ...(JSON.parse(r.payload as string) as { status: number; code: string; path: string }) }));
      await waitFor('2 http.refused rows', async () => (await refusals()).length === 2, 3000);
      assert.deepEqual(
        (await refusals()).map((r) => [r.user, r.status, r.code, r.path]),
        [
          [null, 401, 'ERR_AUTH_TOKEN_MISSING', '/agent/sessions'],
          ['x', 403, 'ERR_AUTH_FORBIDDEN', '/agent/sessions']
        ]
      );

      // Static files and health from whichever worker answers.
      assert.equal((await fetch(`http://127.0.0.1:${agent.port}/`)).status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${agent.port}/readyz`)).status, 200);

      // Database: one agent row, two worker rows pointing at it, sessions on the workers.
      const { servers, sessions } = sqliteRows(agent.database);
      const agentRow = servers.find((s) => s.role === 'agent')!;
      const workerRows = servers.filter((s) => s.role === 'worker');
      assert.equal(workerRows.length, 2);
      for (const w of workerRows) assert.equal(w.parent_id, agentRow.id);
      const workerIds = new Set(workers.map((w) => w.id));
      assert.ok(sessions.length >= 10);
      for (const s of sessions) assert.ok(workerIds.has(s.server_id as string));
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  test('three workers: each linked to the two others; a broadcast from any worker reaches the other two once; a replacement is linked in', async () => {
    // The agent's pair socket lives under TMPDIR only while it links workers.
    const tmp = mkdtempSync(join(tmpdir(), 'zenconn-tmp-'));
    const agent = await startAgent(['--workers', '3'], { env: { TMPDIR: tmp } });
    const clients: TestClient[] = [];
    try {
      clients.push(...(await Promise.all(Array.from({ length: 6 }, () => TestClient.connect(agent.port)))));
      await Promise.all(clients.map((c) => c.subscribe('mesh')));
      const linked = await agent.waitWorkers((w) => w.length === 3 && w.every((x) => x.sessions === 2 && x.peers === 2), 3000);
      assert.deepEqual(readdirSync(tmp), [], 'nothing left under TMPDIR once the workers are linked');
      const pids = await placement(agent, clients);
      assert.equal(new Set(pids).size, 3);
      for (const [i, sender] of clients.entries()) {
        sender.send({ type: 'broadcast', channel: 'mesh', data: i });
        assert.equal((await sender.nextOf('received')).count, 5);
      }
      await waitFor('every broadcast to arrive', () => clients.every((c) => eventData(c).length >= 5));
      for (const [i, c] of clients.entries()) {
        const got = c.frames.filter((f): f is EventFrame => f.type === 'event').map((f) => f.data as number);
        assert.deepEqual(got.sort(), [0, 1, 2, 3, 4, 5].filter((n) => n !== i), `client ${i} (worker ${pids[i]})`);
      }
      // The worker of clients 0 dies; its replacement is linked to both survivors before it takes a connection.
      const victim = pids[0]!;
      process.kill(victim, 'SIGKILL');
      await agent.waitWorkers((w) => w.length === 3 && !w.some((x) => x.pid === victim) && w.every((x) => x.state === 'ready' && x.peers === 2), 5000);
      assert.deepEqual(readdirSync(tmp), []);
      const fresh = await TestClient.connect(agent.port);
      clients.push(fresh);
      await fresh.subscribe('mesh');
      const fromFresh = (await placement(agent, [fresh]))[0]!;
      assert.ok(!linked.some((w) => w.pid === fromFresh), 'the newcomer is on the replacement');
      const survivors = clients.filter((_, i) => i < 6 && pids[i] !== victim);
      for (const sender of survivors) sender.send({ type: 'broadcast', channel: 'mesh', data: `s${sender.sessionId}` });
      const want = survivors.map((c) => `s${c.sessionId}`).sort();
      const got: string[] = [];
      for (let i = 0; i < want.length; i++) got.push(((await fresh.nextOf('event')) as EventFrame).data as string);
      assert.deepEqual(got.sort(), want);
      fresh.send({ type: 'broadcast', channel: 'mesh', data: 'fresh' });
      assert.equal((await fresh.nextOf('received')).count, survivors.length);
      for (const c of survivors) await c.next((f) => f.type === 'event' && f.data === 'fresh');
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  test('--workers 0 serves sessions in the agent itself (role agent) and /agent/workers lists it', async () => {
    const agent = await startAgent(['--workers', '0']);
    try {
      const c = await TestClient.connect(agent.port);
      await c.subscribe('x');
      const workers = await agent.waitWorkers((w) => w.length === 1 && w[0]!.sessions === 1, 1000);
      assert.equal(workers[0]!.pid, agent.zen.child.pid);
      assert.deepEqual((await agent.sessions('?channel=x')).map((s) => s.id), [c.sessionId]);
      const closed = c.closed();
      assert.equal(await agent.zen.stop('SIGTERM'), 0);
      assert.equal(await closed, 1001);
      const { servers, sessions } = sqliteRows(agent.database);
      assert.deepEqual(servers.map((s) => s.role), ['agent']);
      assert.equal(sessions[0]!.server_id, servers[0]!.id);
    } finally {
      await agent.cleanup();
    }
  });

  test('TLS through the agent, and --worker-ports: a client may connect straight to a worker', async () => {
    const base = await freePortRun(2);
    const { cert, key } = selfSignedCert(tempDir());
    const agent = await startAgent(['--workers', '2', '--worker-ports', String(base), '--tls-cert', cert, '--tls-key', key]);
    try {
      assert.match(agent.zen.stdout(), /listening on https:/);
      const viaAgent = await TestClient.connect(agent.port, { tls: true });
      const direct = await TestClient.connect(base + 1, { tls: true });
      await viaAgent.subscribe('tls');
      await direct.subscribe('tls');
      await waitFor('the registry to list both members of tls', async () => (await agent.sessions('?channel=tls')).length === 2);
      direct.send({ type: 'broadcast', channel: 'tls', data: 'hi' });
      assert.equal(((await viaAgent.nextOf('event')) as EventFrame).data, 'hi');
      const st = await runZen(['status', '--port', String(agent.port), '--host', '127.0.0.1', '--tls-cert', cert, '--tls-key', key, '--json', '--token', await admin()]);
      assert.equal(st.code, 0, st.stderr);
      const ports = (JSON.parse(st.stdout) as { workers: Array<{ port: number; sessions: number }> }).workers.map((w) => w.port);
      assert.deepEqual(ports, [base, base + 1]);
      const reload = await runZen(['reload', '--port', String(agent.port), '--host', '127.0.0.1', '--tls-cert', cert, '--tls-key', key, '--token', await admin()]);
      assert.equal(reload.code, 0, reload.stderr);
      assert.equal(await direct.closed(10000), 1001);
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready' && x.uptimeMs < 10000), 15000);
      const again = await TestClient.connect(base, { tls: true });
      again.ws.terminate();
      viaAgent.ws.terminate();
    } finally {
      await agent.cleanup();
    }
  });
});
