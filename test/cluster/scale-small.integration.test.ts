import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startAgent } from './cluster-helpers.js';
import { makeToken } from '../helpers/tokens.js';
import { ROOT } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import type { FromScaleClient, ToScaleClient } from '../../bench/scale-client.js';

/**
 * The scale path of #15 (npm run bench:scale) in small: 3,000 subscribed sessions from
 * 3 client processes, each dialling its own loopback address (127.0.0.1–3) to an agent
 * on 0.0.0.0 with 2 workers, in both accept modes; one broadcast through POST /api/broadcast reaches every one
 * of them; after every client closed, every session row in the database is closed.
 */
const CLIENTS = 3;
const PER_CLIENT = 1000;
const SESSIONS = CLIENTS * PER_CLIENT;
const CLIENT_PATH = join(ROOT, 'dist', 'bench', 'scale-client.js');

interface Client {
  child: ChildProcess;
  inbox: FromScaleClient[];
}

function take<E extends FromScaleClient['ev']>(c: Client, ev: E): Extract<FromScaleClient, { ev: E }> | undefined {
  const at = c.inbox.findIndex((m) => m.ev === ev);
  return at < 0 ? undefined : (c.inbox.splice(at, 1)[0] as Extract<FromScaleClient, { ev: E }>);
}

// Both accept modes; under --accept shared the cap's shares (1,550 each) make both workers take sessions.
for (const accept of [['--accept', 'agent'], ['--accept', 'shared', '--max-connections', '3100']]) {
  test(`3,000 sessions over an agent with 2 workers (${accept.join(' ')}): a broadcast reaches all, and after they close every session row is closed`, async () => {
    const agent = await startAgent(['--host', '0.0.0.0', '--workers', '2', '--no-audit', '--max-connections-per-ip', '0', '--handshake-rate-per-ip', '0', ...accept]);
    const clients: Client[] = [];
    try {
      for (let i = 0; i < CLIENTS; i++) {
        const c: Client = { child: fork(CLIENT_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), inbox: [] };
        c.child.on('message', (m: FromScaleClient) => c.inbox.push(m));
        clients.push(c);
      }
      const send = (c: Client, m: ToScaleClient): void => void c.child.send(m);
      clients.forEach((c, i) => send(c, { cmd: 'connect', target: { host: `127.0.0.${i + 1}`, port: agent.port }, channel: 'scale', count: PER_CLIENT, concurrency: 32 }));
      const connected: Array<Extract<FromScaleClient, { ev: 'connected' }>> = [];
      await waitFor('every client process connected', () => {
        for (const c of clients) {
          const m = take(c, 'connected');
          if (m !== undefined) connected.push(m);
        }
        return connected.length === CLIENTS;
      }, 120_000, 50);
      assert.deepEqual(connected.map((m) => [m.ok, m.failed, m.firstError]), Array.from({ length: CLIENTS }, () => [PER_CLIENT, 0, undefined]));
      // Both workers hold sessions: placement (or the shares) spread them.
      const workers = await agent.waitWorkers((w) => w.reduce((n, x) => n + x.sessions, 0) === SESSIONS, 30_000);
      assert.equal(workers.length, 2);
      assert.ok(workers.every((w) => w.sessions > 0), JSON.stringify(workers.map((w) => w.sessions)));

      clients.forEach((c) => send(c, { cmd: 'arm', seq: 7 }));
      await waitFor('every client armed', () => clients.every((c) => c.inbox.some((m) => m.ev === 'armed')), 30_000, 20);
      const res = await fetch(`http://127.0.0.1:${agent.port}/api/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await makeToken('pub', ['publish'])}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'scale', data: { t: Date.now(), s: 7, m: 1, p: '' } })
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { count: number }).count, SESSIONS);
      await waitFor('the broadcast reached every session', () => clients.every((c) => c.inbox.some((m) => m.ev === 'delivered')), 60_000, 20);
      assert.deepEqual(clients.map((c) => take(c, 'delivered')!.count), Array.from({ length: CLIENTS }, () => PER_CLIENT));

      clients.forEach((c) => send(c, { cmd: 'close' }));
      await waitFor('every client closed its sessions', () => clients.every((c) => c.inbox.some((m) => m.ev === 'closed')), 60_000, 20);
      assert.equal(clients.reduce((n, c) => n + (take(c, 'closed')!.droppedByServer), 0), 0);
      const db = new Database(agent.database.slice('sqlite:'.length), { readonly: true });
      try {
        const count = (): { total: number; open: number } =>
          db.prepare("SELECT count(*) AS total, coalesce(sum(disconnected_at IS NULL), 0) AS open FROM sessions").get() as { total: number; open: number };
        await waitFor('every session row closed', () => {
          const c = count();
          return c.total >= SESSIONS && c.open === 0;
        }, 60_000, 100);
        assert.equal(count().total, SESSIONS);
      } finally {
        db.close();
      }
      await agent.waitWorkers((w) => w.every((x) => x.sessions === 0), 30_000);
    } finally {
      for (const c of clients) c.child.kill('SIGKILL');
      await agent.cleanup();
    }
  });
}
