import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient, upgradeStatus } from '../helpers/client.js';
import { request } from 'node:http';
import { join } from 'node:path';
import { waitFor } from '../helpers/wait.js';
import { selfSignedCert, tempDir } from '../helpers/server.js';
import { placement, sqliteRows, startAgent, type AgentUnderTest } from './cluster-helpers.js';


interface View {
  agent: { refusedConnections: number };
  workers: Array<{ pid: number; sessions: number; forwarded: number; refused?: { maxConnections?: number } }>;
}

/** `GET /agent/workers` over the agent's control socket: at the cap, a connection to its port is refused. */
function controlView(agent: AgentUnderTest): Promise<View> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(agent.dir, 'zenconn.sock'), path: '/agent/workers' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as View) : reject(new Error(`${res.statusCode} ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until the agent's view has `sessions` per worker (in slot order), and returns it. */
async function waitSessions(agent: AgentUnderTest, check: (perWorker: number[]) => boolean): Promise<View> {
  let view: View | null = null;
  await waitFor('the agent to count the sessions', async () => {
    view = await controlView(agent);
    return check(view.workers.map((w) => w.sessions));
  });
  return view!;
}

const sum = (xs: number[]): number => xs.reduce((n, x) => n + x, 0);

describe('--accept shared: the workers accept on the agent port', () => {
  test('connections reach the workers without the agent: sessions open while the agent is stopped, are listed and talk; rows are closed', async () => {
    const agent = await startAgent(['--workers', '2', '--accept', 'shared']);
    const clients: TestClient[] = [];
    try {
      clients.push(...(await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(agent.port)))));
      // With the agent stopped no connection could be handed over: these are accepted by the workers themselves.
      process.kill(agent.zen.child.pid!, 'SIGSTOP');
      let whileStopped: TestClient[];
      try {
        whileStopped = await Promise.all(Array.from({ length: 10 }, () => TestClient.connect(agent.port)));
      } finally {
        process.kill(agent.zen.child.pid!, 'SIGCONT');
      }
      clients.push(...whileStopped);
      // The agent lists every session, on its worker (how the kernel spreads them is its own affair).
      const workers = await agent.waitWorkers((ws) => ws.reduce((n, w) => n + w.sessions, 0) === 30);
      const pids = await placement(agent, clients);
      assert.ok(pids.every((p) => workers.some((w) => w.pid === p)));

      // A session opened while the agent was stopped takes part in a channel like any other.
      const [a, b] = [clients[0]!, clients[29]!];
      await a.subscribe('room');
      await b.subscribe('room');
      a.send({ type: 'broadcast', channel: 'room', data: 'across' });
      assert.equal((await a.nextOf('received')).count, 1);
      const got = await b.nextOf('event');
      assert.equal(got.data, 'across');
      assert.equal(got.from, a.sessionId);

      for (const c of clients.splice(0)) c.ws.close();
      await agent.waitWorkers((ws) => ws.every((w) => w.sessions === 0));
      agent.zen.child.kill('SIGTERM');
      await agent.zen.exited;
      const rows = sqliteRows(agent.database);
      assert.equal(rows.sessions.length, 30);
      assert.deepEqual(rows.sessions.filter((s) => s.disconnected_at === null), [], 'every session row closed');
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  test('--max-connections: each worker holds at most its share, the agent places or refuses the rest; the cap is accepted, one more gets 503', async () => {
    // Shares 2 + 2: a connection that lands on a worker at its share goes to the agent, which gives it to the other or refuses it.
    const agent = await startAgent(['--workers', '2', '--max-connections', '4', '--accept', 'shared']);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const r = await upgradeStatus(agent.port);
        assert.equal(r.status, 101, `session ${i + 1} of 4`);
        clients.push(r.client!);
      }
      const full = await waitSessions(agent, (ws) => sum(ws) === 4);
      assert.deepEqual(full.workers.map((w) => w.sessions), [2, 2], 'each worker at its share');
      for (let i = 0; i < 3; i++) assert.equal((await upgradeStatus(agent.port)).status, 503, `attempt ${i + 1} over the cap`);
      const view = await controlView(agent);
      const refused = view.agent.refusedConnections + sum(view.workers.map((w) => w.refused?.maxConnections ?? 0));
      assert.ok(refused >= 3, `refused ${refused}`);

      clients.pop()!.ws.close();
      // The agent places by its view of the sessions, which hears of the close with the worker's next registry batch.
      await waitSessions(agent, (ws) => sum(ws) === 3);
      const again = await upgradeStatus(agent.port);
      assert.equal(again.status, 101, 'the place freed is taken again, whichever worker the kernel gave it to');
      clients.push(again.client!);
      await waitSessions(agent, (ws) => ws.join() === '2,2');
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  // A forwarded connection whose first bytes were lost would hang its handshake: the timeout makes that a failure.
  test('TLS: a connection forwarded by a worker at its share reaches the other one unread, and its handshake completes there', { timeout: 60_000 }, async () => {
    const { cert, key } = selfSignedCert(tempDir());
    // Shares 1 + 1: whichever worker the kernel gives the second connection to, one of them must forward it.
    const agent = await startAgent(['--workers', '2', '--max-connections', '2', '--accept', 'shared', '--tls-cert', cert, '--tls-key', key]);
    const clients: TestClient[] = [];
    let stopped = 0;
    try {
      clients.push(await TestClient.connect(agent.port, { tls: true }));
      const first = await waitSessions(agent, (ws) => sum(ws) === 1);
      const holder = first.workers.find((w) => w.sessions === 1)!;
      const other = first.workers.find((w) => w.sessions === 0)!;
      // With the empty worker stopped, only the one at its share accepts: it must forward the next connection.
      stopped = other.pid;
      process.kill(stopped, 'SIGSTOP');
      const second = TestClient.connect(agent.port, { tls: true });
      second.catch(() => undefined);
      await waitFor('the worker at its share to forward a connection', async () => (await controlView(agent)).workers.find((w) => w.pid === holder.pid)?.forwarded === 1);
      process.kill(stopped, 'SIGCONT');
      stopped = 0;
      clients.push(await second);
      const view = await waitSessions(agent, (ws) => sum(ws) === 2);
      assert.deepEqual(view.workers.map((w) => w.sessions), [1, 1], 'the forwarded connection is served by the other worker');
      await clients[0]!.subscribe('tls');
      await clients[1]!.subscribe('tls');
      clients[1]!.send({ type: 'broadcast', channel: 'tls', data: 'over tls' });
      assert.equal((await clients[0]!.nextOf('event')).data, 'over tls');
      const over = await TestClient.connect(agent.port, { tls: true }).then(
        (c) => (clients.push(c), 101),
        () => -1
      );
      assert.equal(over, -1, 'over the cap under TLS: closed before any HTTP answer');
    } finally {
      if (stopped !== 0) process.kill(stopped, 'SIGCONT');
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });

  test('a rolling restart: the replacements listen on the shared port, the old workers stop taking connections and exit', async () => {
    const agent = await startAgent(['--workers', '2', '--accept', 'shared']);
    const clients: TestClient[] = [];
    try {
      const before = (await agent.workers()).map((w) => w.pid);
      clients.push(await TestClient.connect(agent.port));
      agent.zen.child.kill('SIGHUP');
      assert.equal(await clients[0]!.closed(10000), 1001, 'the session on an old worker is closed with 1001');
      const after = await agent.waitWorkers((ws) => ws.length === 2 && ws.every((w) => w.state === 'ready' && !before.includes(w.pid)), 20000);
      clients.push(...(await Promise.all(Array.from({ length: 10 }, () => TestClient.connect(agent.port)))));
      const pids = await placement(agent, clients.slice(1));
      assert.ok(pids.every((p) => after.some((w) => w.pid === p)), 'every new session is on a replacement');
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });
});
