import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { RecordWriter } from '../../src/store/record-writer.js';
import { JournalFile, setAside } from '../../src/store/durable/journal-file.js';
import { spoolCodec } from '../../src/store/spool.js';
import { startZen } from '../helpers/process.js';
import { TestClient } from '../helpers/client.js';
import { TEST_JWT_SECRET } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { openRecord, serverRecord } from './store-contract.js';

// The most permissive umask: every mode below is zenconn's own doing. Children inherit it.
const umask = process.umask(0);
const root = mkdtempSync(join(tmpdir(), 'zenconn-modes-'));
after(() => {
  process.umask(umask);
  rmSync(root, { recursive: true, force: true });
});

/** Every file and folder under `dir` (not `dir` itself) with its permission bits. */
function modes(dir: string): Array<[string, 'file' | 'dir' | 'socket', number]> {
  const out: Array<[string, 'file' | 'dir' | 'socket', number]> = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    out.push([relative(root, p), st.isDirectory() ? 'dir' : st.isSocket() ? 'socket' : 'file', st.mode & 0o777]);
    if (st.isDirectory()) out.push(...modes(p));
  }
  return out;
}

function assertPrivate(dir: string): void {
  for (const [path, kind, mode] of modes(dir)) {
    assert.equal(mode.toString(8), kind === 'dir' ? '700' : '600', `${path} (${kind})`);
  }
}

test('with umask 000, a SQLite database, its WAL and its folders are the owner\'s only', async () => {
  const dir = join(root, 'sqlite');
  const store = new SqliteStore(join(dir, 'a', 'b', 'z.db'));
  await store.open();
  try {
    await store.registerServer(serverRecord('srv'));
    const names = modes(dir).map(([p]) => p);
    for (const f of ['z.db', 'z.db-wal', 'z.db-shm']) assert.ok(names.includes(join('sqlite', 'a', 'b', f)), `${f} in ${names.join(', ')}`);
    assertPrivate(dir);
  } finally {
    await store.close();
  }
});

test('with umask 000, the record spool and its folder are the owner\'s only', async () => {
  const dir = join(root, 'spool-case');
  const store = new SqliteStore(join(dir, 'z.db'));
  await store.open();
  await store.close(); // writes fail: the records go to the spool
  const writer = new RecordWriter({ store, serverId: 'srv', spoolDir: join(dir, 'data', 'spool'), maxPendingRecords: 1, batchMs: 5, retryMaxMs: 50 });
  try {
    writer.recordOpen(openRecord('s0', 'srv'));
    await waitFor('a failed write', () => !writer.healthy);
    writer.recordOpen(openRecord('s1', 'srv'));
    writer.recordOpen(openRecord('s2', 'srv'));
    assert.equal(writer.spooling, true);
    assert.ok(readdirSync(join(dir, 'data', 'spool')).some((f) => f.endsWith('.ndjson')));
    assertPrivate(join(dir, 'data'));
  } finally {
    await writer.close();
  }
});

test('with umask 000, a durable journal file, a set-aside file and their folders are the owner\'s only', () => {
  const dir = join(root, 'journal-case');
  const file = JournalFile.open(join(dir, 'data', 'journal', 'srv.1.ndjson'), spoolCodec);
  try {
    setAside(join(dir, 'data', 'journal', 'srv.rejected.ndjson'), '{}');
    assert.deepEqual(readdirSync(join(dir, 'data', 'journal')).sort(), ['srv.1.ndjson', 'srv.rejected.ndjson']);
    assertPrivate(dir);
  } finally {
    file.close();
  }
});

test('with umask 000, zenconn serve creates its database, journal, access log and their folders 0600/0700', async () => {
  const dir = join(root, 'serve');
  mkdirSync(join(root, 'public'));
  const zen = await startZen([
    'serve',
    '--host', '127.0.0.1',
    '--port', '0',
    '--public', join(root, 'public'),
    '--database', `sqlite:${join(dir, 'db', 'zenconn.db')}`,
    '--spool-dir', join(dir, 'data', 'spool'),
    '--audit-journal-dir', join(dir, 'data', 'journal'),
    '--audit-ack-from', 'journal',
    '--access-log', join(dir, 'logs', 'access.log'),
    '--jwt-secret', TEST_JWT_SECRET,
    '--log-level', 'warn'
  ]);
  try {
    const c = await TestClient.connect(zen.port);
    await c.subscribe('room');
    c.send({ type: 'broadcast', channel: 'room', data: 'x' });
    await c.nextOf('received');
    await c.close();
    await fetch(`http://127.0.0.1:${zen.port}/healthz`);
    await waitFor('the access log', () => readdirSync(join(dir, 'logs')).includes('access.log'));
    const names = modes(dir).map(([p]) => p);
    for (const f of [join('db', 'zenconn.db'), join('db', 'zenconn.db-wal'), join('logs', 'access.log'), join('data', 'journal')]) {
      assert.ok(names.includes(join('serve', f)), `${f} in ${names.join(', ')}`);
    }
    assertPrivate(dir);
  } finally {
    assert.equal(await zen.stop('SIGTERM'), 0);
  }
  assertPrivate(dir);
});
