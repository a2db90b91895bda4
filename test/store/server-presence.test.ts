import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { ServerPresence } from '../../src/store/server-presence.js';
import type { Store, StoreLogger } from '../../src/store/store.js';
import { startServer } from '../helpers/server.js';

const root = mkdtempSync(join(tmpdir(), 'zenconn-presence-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function openStore(): Promise<SqliteStore> {
  const store = new SqliteStore(join(root, `case-${++n}.db`));
  await store.open();
  return store;
}

function logger(): StoreLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (_o, m) => lines.push(m), warn: (_o, m) => lines.push(m), error: (_o, m) => lines.push(m) };
}

function presence(store: Store, log: StoreLogger, id: string, sweepStale: boolean): ServerPresence {
  return new ServerPresence({ store, logger: log, server: { id, role: 'standalone', parentId: null, address: 'http://127.0.0.1:0' }, staleServerMs: 1000, heartbeatMs: 60000, sweepStale });
}

describe('ServerPresence (this process in `servers`)', () => {
  test('a node on --port 0 stores the port it is bound to, not 0', async () => {
    const s = await startServer({ port: '0' });
    try {
      const rows = await s.node.store.listServers();
      assert.deepEqual(rows.map((r) => r.address), [`http://127.0.0.1:${s.port}`]);
    } finally {
      await s.stop();
    }
  });

  test('register closes out the dead servers and writes the row; markStopped stops it', async () => {
    const store = await openStore();
    try {
      const log = logger();
      await store.registerServer({ id: 'dead', role: 'standalone', parentId: null, hostname: 'h', pid: 1, address: 'x', startedAt: new Date(Date.now() - 60000) });
      const p = presence(store, log, 'me', true);
      await p.register();
      const rows = await store.listServers();
      assert.notEqual(rows.find((r) => r.id === 'dead')!.stoppedAt, null);
      const me = rows.find((r) => r.id === 'me')!;
      assert.equal(me.pid, process.pid);
      assert.equal(me.stoppedAt, null);
      assert.deepEqual(log.lines, ['closed out servers that died without stopping']);
      await p.markStopped();
      assert.notEqual((await store.listServers()).find((r) => r.id === 'me')!.stoppedAt, null);
    } finally {
      await store.close();
    }
  });

  test('a beat refreshes last_seen_at; with sweepStale it also closes out servers that stopped answering', async () => {
    const store = await openStore();
    try {
      const log = logger();
      const p = presence(store, log, 'me', true);
      await p.register(new Date(Date.now() - 500));
      const before = (await store.listServers())[0]!.lastSeenAt.getTime();
      await store.registerServer({ id: 'gone', role: 'standalone', parentId: null, hostname: 'h', pid: 1, address: 'x', startedAt: new Date(Date.now() - 60000) });
      await p.beat();
      const rows = await store.listServers();
      assert.ok(rows.find((r) => r.id === 'me')!.lastSeenAt.getTime() > before);
      assert.notEqual(rows.find((r) => r.id === 'gone')!.stoppedAt, null);
      assert.deepEqual(log.lines, ['closed out servers that stopped answering']);
    } finally {
      await store.close();
    }
  });

  test('without sweepStale (the agent) a beat leaves the other servers alone', async () => {
    const store = await openStore();
    try {
      const p = presence(store, logger(), 'agent', false);
      await p.register();
      await store.registerServer({ id: 'gone', role: 'standalone', parentId: null, hostname: 'h', pid: 1, address: 'x', startedAt: new Date(Date.now() - 60000) });
      await p.beat();
      assert.equal((await store.listServers()).find((r) => r.id === 'gone')!.stoppedAt, null);
    } finally {
      await store.close();
    }
  });

  test('a database outage is logged once, and its end once; a beat never rejects', async () => {
    const store = await openStore();
    try {
      const log = logger();
      const p = presence(store, log, 'me', false);
      await p.register();
      const touch = store.touchServer.bind(store);
      store.touchServer = () => Promise.reject(new Error('down'));
      await p.beat();
      await p.beat();
      store.touchServer = touch;
      await p.beat();
      await p.beat();
      assert.deepEqual(log.lines, ['database unreachable; the heartbeat is not recorded', 'database reachable again']);
    } finally {
      await store.close();
    }
  });
});
