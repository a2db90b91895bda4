import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import Database from 'better-sqlite3';
import { PostgresStore } from '../../src/store/postgres-store.js';
import { RecordWriter } from '../../src/store/record-writer.js';
import { encodeEntry } from '../../src/store/spool.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { RecordBatch } from '../../src/store/store.js';
import { DelegatingStore } from './delegating-store.js';
import { waitFor } from '../helpers/wait.js';
import { testPostgresUrl, urlWithPort, withSchema } from '../helpers/pg.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { closeRecord, openRecord, serverRecord } from './store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'zenconn-writer-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(root, `case-${++n}`);
const pgPort = Number(new URL(testPostgresUrl()).port || 5432);

/** Writers and stores a test opened; closed after it even when it fails, so a failure cannot hang the run. */
const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of opened.splice(0).reverse()) await c.close();
});
function track<T extends { close(): Promise<void> }>(x: T): T {
  opened.push(x);
  return x;
}

/** A real store that also counts the `writeBatch` transactions asked of it (a wrapper, not a mock). */
class CountingStore extends DelegatingStore {
  readonly batches: number[] = [];
  override writeBatch(batch: RecordBatch): Promise<void> {
    this.batches.push(batch.opens.length + batch.closes.length);
    return this.inner.writeBatch(batch);
  }
}

/** The spool files (not the rejected ones) in `dir`. */
const spoolFiles = (dir: string): string[] =>
  readdirSync(dir).filter((f) => f.endsWith('.ndjson') && !f.endsWith('.rejected.ndjson'));
const lineCount = (path: string): number => readFileSync(path, 'utf8').split('\n').filter(Boolean).length;

/** A SQLite file store, migrated, with server `srv` registered; plus raw access to it. */
async function sqliteFixture(): Promise<{ dir: string; store: SqliteStore; rows: (sql: string) => Array<Record<string, unknown>> }> {
  const dir = freshDir();
  const path = join(dir, 'db', 'zenconn.db');
  const store = track(new SqliteStore(path));
  await store.open();
  await store.registerServer(serverRecord('srv'));
  return {
    dir,
    store,
    rows(sql) {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare(sql).all() as Array<Record<string, unknown>>;
      } finally {
        db.close();
      }
    }
  };
}

test('2,500 opens are written in batches of at most batchRows: three transactions', async () => {
  const { dir, store, rows } = await sqliteFixture();
  const counting = new CountingStore(store);
  const writer = track(new RecordWriter({ store: counting, serverId: 'srv', spoolDir: join(dir, 'spool') }));
  for (let i = 0; i < 2500; i++) writer.recordOpen(openRecord(`s${i}`, 'srv'));
  assert.equal(writer.pending, 2500);
  assert.deepEqual(counting.batches, [], 'nothing is written from inside recordOpen');
  await waitFor('all written', () => writer.pending === 0);
  assert.deepEqual(counting.batches, [1000, 1000, 500]);
  assert.equal(rows('SELECT count(*) AS n FROM sessions')[0]!.n, 2500);
  await writer.close();
  await store.close();
});

test('a close recorded right after its open goes in the same batch, after the open', async () => {
  const { dir, store, rows } = await sqliteFixture();
  const counting = new CountingStore(store);
  const writer = track(new RecordWriter({ store: counting, serverId: 'srv', spoolDir: join(dir, 'spool') }));
  writer.recordOpen(openRecord('a', 'srv'));
  writer.recordClose(closeRecord('a', { closeCode: 1001, bytesIn: 7 }));
  assert.equal(await writer.flush(5000), true);
  assert.deepEqual(counting.batches, [2]);
  assert.deepEqual(rows('SELECT close_code, bytes_in FROM sessions'), [{ close_code: 1001, bytes_in: 7 }]);
  await writer.close();
  await store.close();
});

test('without flush, a record is written about batchMs after it arrives', async () => {
  const { dir, store } = await sqliteFixture();
  const counting = new CountingStore(store);
  const writer = track(new RecordWriter({ store: counting, serverId: 'srv', spoolDir: join(dir, 'spool'), batchMs: 30 }));
  const started = Date.now();
  writer.recordOpen(openRecord('a', 'srv'));
  writer.recordOpen(openRecord('b', 'srv'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(counting.batches, []);
  await waitFor('written', () => writer.pending === 0, 2000);
  assert.ok(Date.now() - started >= 25);
  assert.deepEqual(counting.batches, [2]);
  await writer.close();
  await store.close();
});

test('memory holds at most maxPendingRecords; the rest goes to the disk spool and is replayed once the database is back', async () => {
  const { dir, store, rows } = await sqliteFixture();
  await store.close(); // writes now fail until it is opened again
  const spoolDir = join(dir, 'spool');
  const writer = track(new RecordWriter({ store, serverId: 'srv', spoolDir, maxPendingRecords: 10, batchMs: 5, retryMaxMs: 50 }));
  for (let i = 0; i < 9; i++) writer.recordOpen(openRecord(`s${i}`, 'srv'));
  await waitFor('a failed write', () => !writer.healthy);
  writer.recordOpen(openRecord('s9', 'srv'));
  assert.equal(writer.spooling, false, 'ten records fit in memory');
  assert.deepEqual(spoolFiles(spoolDir), []);
  writer.recordClose(closeRecord('s0', { bytesOut: 0 }));
  assert.equal(writer.spooling, true, 'the 11th moves them all to disk');
  for (let i = 1; i < 10; i++) writer.recordClose(closeRecord(`s${i}`, { bytesOut: i }));
  assert.equal(writer.pending, 20);
  const [file] = spoolFiles(spoolDir);
  assert.ok(file);
  await store.open();
  assert.equal(await writer.flush(5000), true);
  assert.equal(writer.healthy, true);
  assert.equal(writer.spooling, false);
  assert.deepEqual(spoolFiles(spoolDir), [], 'the spool file is deleted once replayed');
  const got = rows('SELECT id, bytes_out, close_code FROM sessions ORDER BY bytes_out');
  assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, bytes_out: i, close_code: 1000 })));
  await writer.close();
  await store.close();
});

test('the spool is bounded by maxSpoolBytes; records beyond it are counted as dropped', async () => {
  const { dir, store } = await sqliteFixture();
  await store.close();
  const spoolDir = join(dir, 'spool');
  const writer = track(new RecordWriter({ store, serverId: 'srv', spoolDir, maxPendingRecords: 5, maxSpoolBytes: 2000 }));
  for (let i = 0; i < 100; i++) writer.recordOpen(openRecord(`s${i}`, 'srv'));
  assert.ok(writer.dropped > 0);
  await writer.close();
  const [file] = spoolFiles(spoolDir);
  const size = statSync(join(spoolDir, file!)).size;
  assert.ok(size <= 2000, `spool is ${size} bytes`);
  assert.equal(lineCount(join(spoolDir, file!)) + writer.dropped, 100);
});

test('a record the database refuses for good is set aside and does not hold up the others', async () => {
  const { dir, store, rows } = await sqliteFixture();
  const spoolDir = join(dir, 'spool');
  const writer = track(new RecordWriter({ store, serverId: 'srv', spoolDir }));
  writer.recordOpen(openRecord('a', 'srv'));
  writer.recordOpen(openRecord('orphan', 'no-such-server'));
  writer.recordOpen(openRecord('b', 'srv'));
  assert.equal(await writer.flush(5000), true);
  assert.equal(writer.rejected, 1);
  assert.deepEqual(rows('SELECT id FROM sessions ORDER BY id'), [{ id: 'a' }, { id: 'b' }]);
  const rejected = readFileSync(join(spoolDir, 'srv.rejected.ndjson'), 'utf8');
  assert.match(rejected, /"id":"orphan"/);
  await writer.close();
  await store.close();
});

test("a dead process's spool file is replayed at construction; a live process's is left alone", async () => {
  const { dir, store, rows } = await sqliteFixture();
  const spoolDir = join(dir, 'spool');
  const writer0 = track(new RecordWriter({ store, serverId: 'probe', spoolDir }));
  await writer0.close();
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  const lines = [
    encodeEntry({ kind: 'open', record: openRecord('old-1', 'srv') }),
    'not json\n',
    encodeEntry({ kind: 'open', record: openRecord('old-2', 'srv') }),
    encodeEntry({ kind: 'close', record: closeRecord('old-1', { closeCode: 1006 }) }),
    '{"t":"open","id":"torn' // a write cut short by the crash
  ];
  writeFileSync(join(spoolDir, `crashed.${deadPid}.ndjson`), lines.join(''));
  writeFileSync(join(spoolDir, `running.${process.ppid}.ndjson`), lines[0]!);

  const writer = track(new RecordWriter({ store, serverId: 'srv', spoolDir }));
  assert.equal(writer.pending, 5);
  assert.equal(await writer.flush(5000), true);
  assert.deepEqual(rows('SELECT id, close_code FROM sessions ORDER BY id'), [
    { id: 'old-1', close_code: 1006 },
    { id: 'old-2', close_code: null }
  ]);
  assert.equal(writer.rejected, 2, 'the malformed and the torn line are set aside');
  assert.deepEqual(spoolFiles(spoolDir), [`running.${process.ppid}.ndjson`]);
  await writer.close();
  await store.close();
});

test('two writers for one server in one process are refused', async () => {
  const { dir, store } = await sqliteFixture();
  const spoolDir = join(dir, 'spool');
  const writer = track(new RecordWriter({ store, serverId: 'srv', spoolDir }));
  assert.throws(() => new RecordWriter({ store, serverId: 'srv', spoolDir }), /already running/);
  await writer.close();
  new RecordWriter({ store, serverId: 'srv', spoolDir }).close();
  await store.close();
});

test('a PostgreSQL outage loses nothing: records queue, spill to disk, and are all written once it is back', async () => {
  const db = await withSchema();
  const proxy = await startTcpProxy({ port: pgPort });
  const store = new PostgresStore(urlWithPort(db.url, proxy.port), { connectTimeoutMs: 1000, queryTimeoutMs: 3000 });
  const spoolDir = freshDir();
  let writer: RecordWriter | undefined;
  try {
    await store.open();
    await store.registerServer(serverRecord('srv'));
    const counting = new CountingStore(store);
    writer = track(new RecordWriter({ store: counting, serverId: 'srv', spoolDir, batchMs: 10, batchRows: 100, maxPendingRecords: 300, retryMaxMs: 300 }));
    const closeOf = (i: number) =>
      closeRecord(`s${i}`, { closeCode: 1000 + (i % 3), bytesIn: i * 10, bytesOut: i * 20, messagesIn: i, messagesOut: i + 1 });

    for (let i = 0; i < 200; i++) writer.recordOpen(openRecord(`s${i}`, 'srv'));
    assert.equal(await writer.flush(5000), true);

    proxy.cut();
    for (let i = 0; i < 100; i++) writer.recordClose(closeOf(i));
    await waitFor('a failed write', () => !writer!.healthy);
    for (let i = 200; i < 1000; i++) {
      writer.recordOpen(openRecord(`s${i}`, 'srv'));
      if (i % 2 === 0) writer.recordClose(closeOf(i - 100));
    }
    for (let i = 100; i < 200; i++) writer.recordClose(closeOf(i)); // repeats: already queued above
    assert.equal(writer.spooling, true, 'past maxPendingRecords the records are on disk');
    assert.equal(spoolFiles(spoolDir).length, 1);
    const tried = counting.batches.length;
    await waitFor('a few failed retries', () => counting.batches.length >= tried + 3);
    assert.equal(writer.healthy, false);

    proxy.restore();
    assert.equal(await writer.flush(20_000), true);
    assert.equal(writer.healthy, true);
    assert.equal(writer.pending, 0);
    assert.deepEqual(spoolFiles(spoolDir), []);
    assert.equal(writer.dropped, 0);

    const got = await db.query<{ id: string; close_code: number | null; bytes_in: string | null; bytes_out: string; messages_in: string; messages_out: string }>(
      `SELECT id, close_code, bytes_in, bytes_out, messages_in, messages_out FROM sessions`
    );
    assert.equal(got.length, 1000);
    assert.equal(new Set(got.map((r) => r.id)).size, 1000);
    const closed = new Set<number>();
    for (let i = 0; i < 200; i++) closed.add(i);
    for (let i = 200; i < 1000; i += 2) closed.add(i - 100);
    for (const r of got) {
      const i = Number(r.id.slice(1));
      if (closed.has(i)) {
        const c = closeOf(i);
        assert.deepEqual(
          [r.close_code, Number(r.bytes_in), Number(r.bytes_out), Number(r.messages_in), Number(r.messages_out)],
          [c.closeCode, c.bytesIn, c.bytesOut, c.messagesIn, c.messagesOut],
          r.id
        );
      } else {
        assert.equal(r.close_code, null, r.id);
      }
    }
  } finally {
    await writer?.close();
    await store.close();
    await proxy.close();
    await db.drop();
  }
});

test('flush while PostgreSQL is down returns false within its timeout; the records on disk are replayed by the next writer', async () => {
  const db = await withSchema();
  const proxy = await startTcpProxy({ port: pgPort });
  const store = new PostgresStore(urlWithPort(db.url, proxy.port), { connectTimeoutMs: 1000, queryTimeoutMs: 3000 });
  const spoolDir = freshDir();
  try {
    await store.open();
    await store.registerServer(serverRecord('srv'));
    const counting = new CountingStore(store);
    const writer = track(new RecordWriter({ store: counting, serverId: 'srv', spoolDir, batchMs: 5 }));
    proxy.cut('hold'); // the network goes silent: writes hang rather than fail
    for (let i = 0; i < 50; i++) writer.recordOpen(openRecord(`s${i}`, 'srv'));
    for (let i = 0; i < 20; i++) writer.recordClose(closeRecord(`s${i}`));
    await waitFor('a write in flight', () => counting.batches.length > 0);
    const started = Date.now();
    assert.equal(await writer.flush(300), false);
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 1000, `flush took ${took} ms`);
    await writer.close();
    const files = spoolFiles(spoolDir);
    assert.equal(files.length, 1);
    assert.equal(lineCount(join(spoolDir, files[0]!)), 70);

    proxy.restore();
    const next = track(new RecordWriter({ store, serverId: 'srv-restarted', spoolDir }));
    assert.equal(next.pending, 70);
    assert.equal(await next.flush(10_000), true);
    assert.deepEqual(spoolFiles(spoolDir), []);
    const [count] = await db.query<{ open: number; closed: number }>(
      `SELECT count(*)::int AS open, count(disconnected_at)::int AS closed FROM sessions`
    );
    assert.deepEqual(count, { open: 50, closed: 20 });
    await next.close();
  } finally {
    await store.close();
    await proxy.close();
    await db.drop();
  }
});
