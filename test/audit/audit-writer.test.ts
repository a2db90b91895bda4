import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditWriter, type AuditWriterOptions } from '../../src/audit/audit-writer.js';
import { journalKey } from '../../src/audit/audit-journal.js';
import { decodePayload } from '../../src/audit/audit-payload.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { FaultyStore, MemoryLogger, allRows, entry, tempFolder, waitFor } from './helpers.js';

const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of opened.splice(0).reverse()) await c.close();
});

async function setup(options: Partial<AuditWriterOptions> = {}, path = ':memory:') {
  const store = new FaultyStore(new SqliteStore(path));
  await store.open();
  opened.push(store);
  const dir = options.journalDir ?? join(tempFolder(), 'journal');
  const logger = new MemoryLogger();
  const writer = new AuditWriter({ store, serverId: 'srv-1', journalKey: journalKey(`sqlite:${path}`), journalDir: dir, logger, ...options });
  writer.start();
  opened.push(writer);
  return { store, writer, dir, logger };
}

const journalFiles = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.ndjson')) : []);

test('rows recorded in one turn go to the database in one transaction, with UUID v7 ids and the server id', async () => {
  const { store, writer } = await setup();
  for (let i = 0; i < 300; i++) writer.record(entry({ messageId: `m${i}` }));
  assert.deepEqual(store.writes, [], 'record() never writes on the caller’s turn');
  await waitFor('rows', () => store.committed.size === 300);
  assert.deepEqual(store.writes, [300]);
  const rows = await allRows(store);
  assert.equal(new Set(rows.map((r) => r.id)).size, 300);
  for (const r of rows) {
    assert.match(r.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(r.serverId, 'srv-1');
  }
});

test('a full batch is written without waiting for the window; the rest follows in the next transaction', async () => {
  const { store, writer } = await setup({ batchMs: 10_000, batchRows: 100 });
  for (let i = 0; i < 150; i++) writer.record(entry());
  await waitFor('first batch', () => store.committed.size >= 100, 2000);
  assert.equal(store.writes[0], 100);
  assert.equal(await writer.flush(2000), true);
  assert.equal(store.committed.size, 150);
});

test('afterDurable calls back in call order, each only once the rows recorded before it are committed', async () => {
  const { store, writer } = await setup();
  store.delayMs = 30;
  const calls: string[] = [];
  for (let i = 0; i < 20; i++) {
    writer.record(entry({ messageId: `m${i}`, direction: 'in' }));
    writer.record(entry({ messageId: `m${i}`, direction: 'out', type: 'event' }));
    writer.afterDurable(() => {
      assert.ok(store.committedMessages.has(`m${i}`), `m${i} acknowledged before it was committed`);
      calls.push(`m${i}`);
    });
    if (i % 7 === 0) await waitFor('a batch taken', () => writer.stats().queued === 0); // spread over several batches
  }
  await waitFor('callbacks', () => calls.length === 20);
  assert.deepEqual(calls, Array.from({ length: 20 }, (_, i) => `m${i}`));
  assert.ok(store.writes.length > 1);
});

test('commitsInFlight 2 (PostgreSQL): two transactions at most overlap, finish out of order, and acknowledgements stay in order', async () => {
  let running = 0;
  let peak = 0;
  let n = 0;
  const { store, writer } = await setup({
    asyncWrite: true,
    commitsInFlight: 2,
    write: async (rows) => {
      running++;
      peak = Math.max(peak, running);
      // Odd writes are slow, even ones fast: the second of a pair commits first.
      await new Promise((r) => setTimeout(r, ++n % 2 === 1 ? 40 : 5));
      try {
        await store.writeAudit(rows);
      } finally {
        running--;
      }
    }
  });
  const calls: string[] = [];
  for (let i = 0; i < 12; i++) {
    writer.record(entry({ messageId: `m${i}` }));
    writer.afterDurable(() => {
      assert.ok(store.committedMessages.has(`m${i}`), `m${i} acknowledged before it was committed`);
      calls.push(`m${i}`);
    });
    await new Promise((r) => setImmediate(r)); // one turn each: a batch can start while one is in flight
  }
  await waitFor('callbacks', () => calls.length === 12);
  assert.deepEqual(calls, Array.from({ length: 12 }, (_, i) => `m${i}`));
  assert.equal(peak, 2, 'two transactions overlapped, never three');
  assert.equal(store.committed.size, 12);
  assert.ok(store.writes.length >= 3);
});

test('ackFrom journal: acknowledged once in the journal, before the database commits; the replay copies the rows in and removes the file quietly', async () => {
  const { store, writer, dir, logger } = await setup({ ackFrom: 'journal', retryMinMs: 20 });
  store.delayMs = 150; // a distant database
  for (let i = 0; i < 10; i++) writer.record(entry({ messageId: `m${i}` }));
  let committedAtAck = -1;
  writer.afterDurable(() => (committedAtAck = store.committed.size));
  await waitFor('ack', () => committedAtAck >= 0, 1000);
  assert.equal(committedAtAck, 0, 'acknowledged before the database committed');
  const files = journalFiles(dir);
  assert.equal(files.length, 1);
  assert.equal(readFileSync(join(dir, files[0]!), 'utf8').trim().split('\n').length, 10, 'the rows are in the journal when acknowledged');
  await waitFor('replayed', () => store.committed.size === 10, 3000);
  await waitFor('journal removed', () => journalFiles(dir).length === 0, 3000);
  // The next rows take the same path, in a new file.
  writer.record(entry({ messageId: 'm10' }));
  assert.equal(await writer.flush(3000), true);
  await waitFor('replayed again', () => store.committedMessages.has('m10'), 3000);
  assert.deepEqual(store.writes.filter((n) => n > 0).reduce((a, b) => a + b, 0), 11, 'each row written once');
  assert.equal(logger.has('info', /replayed; writing to the database again/), false, 'the normal cycle is not logged as a recovery');
});

test('ackFrom journal under steady traffic: the file in use is rotated, rotated files are deleted once replayed, every row lands once', async () => {
  const { store, writer, dir } = await setup({ ackFrom: 'journal', retryMinMs: 10, journalRotateBytes: 4096, batchRows: 50 });
  store.delayMs = 15; // every replay write takes a while, so rows keep arriving during it
  let n = 0;
  let maxFiles = 0;
  let maxBytes = 0;
  const started = Date.now();
  while (Date.now() - started < 1200) {
    for (let i = 0; i < 5; i++) writer.record(entry({ messageId: `s${n++}` }));
    const files = journalFiles(dir);
    maxFiles = Math.max(maxFiles, files.length);
    maxBytes = Math.max(maxBytes, files.reduce((b, f) => b + (existsSync(join(dir, f)) ? statSync(join(dir, f)).size : 0), 0));
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.equal(await writer.flush(5000), true);
  await waitFor('all replayed', () => store.committed.size === n, 5000);
  await waitFor('journal gone', () => journalFiles(dir).length === 0, 3000);
  assert.ok(maxFiles <= 4, `${maxFiles} journal files at once`);
  // Without rotation the one file would hold every row of the run (a few hundred KiB).
  assert.ok(maxBytes < 64 * 1024, `the journal reached ${maxBytes} bytes for ${n} rows`);
  assert.ok(writer.stats().batches > 10);
  // Each row written once: the ids of the rows committed equal the rows recorded.
  assert.equal(store.writes.reduce((a, b) => a + b, 0), n);
});

test('with every transaction slot taken, the writer waits for one to end instead of spinning', async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const { store, writer } = await setup({
    asyncWrite: true,
    commitsInFlight: 2,
    write: async (rows) => {
      await gate;
      await store.writeAudit(rows);
    }
  });
  writer.record(entry());
  await new Promise((r) => setImmediate(r));
  writer.record(entry());
  await new Promise((r) => setImmediate(r));
  writer.record(entry()); // queued: both slots are taken
  // Many turns of the event loop later the third row still waits for a slot (the CPU
  // spent waiting is the benchmark's business, not npm test's).
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  assert.equal(writer.stats().queued, 1);
  assert.equal(writer.stats().batches, 2);
  release();
  assert.equal(await writer.flush(2000), true);
  assert.equal(store.committed.size, 3);
});

test('afterDurable with nothing pending calls back at once; with async durability always at once', async () => {
  const { writer } = await setup();
  let called = false;
  writer.afterDurable(() => (called = true));
  assert.equal(called, true);
  const a = await setup({ durability: 'async' });
  a.writer.record(entry());
  let asyncCalled = false;
  a.writer.afterDurable(() => (asyncCalled = true));
  assert.equal(asyncCalled, true);
  await waitFor('async row', () => a.store.committed.size === 1);
});

test('a database write slower than the bound is acknowledged from the journal; the rows reach the database once', async () => {
  const { store, writer, dir } = await setup({ slowWriteMs: 100, retryMinMs: 20 });
  store.delayMs = 400;
  const started = Date.now();
  let ackedAfter = -1;
  let committedAtAck = -1;
  for (let i = 0; i < 10; i++) writer.record(entry({ messageId: `m${i}` }));
  writer.afterDurable(() => {
    ackedAfter = Date.now() - started;
    committedAtAck = store.committed.size;
  });
  await waitFor('ack', () => ackedAfter >= 0, 2000);
  assert.equal(committedAtAck, 0, `acknowledged after ${ackedAfter} ms with the write still in flight: from the journal`);
  assert.equal(store.committed.size, 0);
  assert.equal(writer.stats().mode, 'journal');
  assert.equal(journalFiles(dir).length, 1);
  store.delayMs = 0;
  await waitFor('back to direct', () => writer.stats().mode === 'direct', 5000);
  const rows = await allRows(store);
  assert.equal(rows.length, 10, 'the slow write and the replay both committed: still 10 rows');
  assert.deepEqual(journalFiles(dir), [], 'a replayed journal is deleted');
});

test('while the database is down acknowledgements come from the journal; it is replayed when it is back, without duplicates', async () => {
  const { store, writer, dir, logger } = await setup({ retryMinMs: 20, retryMaxMs: 50 });
  store.fail = true;
  let acked = 0;
  for (let b = 0; b < 10; b++) {
    for (let i = 0; i < 10; i++) writer.record(entry({ messageId: `m${b}-${i}` }));
    writer.afterDurable(() => acked++);
    await waitFor('a batch taken', () => writer.stats().queued === 0);
  }
  await waitFor('acks from the journal', () => acked === 10);
  assert.equal(writer.healthy, true, 'the journal takes the rows: still healthy');
  assert.equal((await allRows(store)).length, 0);
  assert.ok(logger.has('error', /journaling/));
  const [file] = journalFiles(dir);
  assert.equal(readFileSync(join(dir, file!), 'utf8').trimEnd().split('\n').length, 100);
  store.fail = false;
  await waitFor('replayed', () => writer.stats().mode === 'direct', 5000);
  const rows = await allRows(store);
  assert.equal(rows.length, 100);
  assert.equal(new Set(rows.map((r) => r.messageId)).size, 100);
  writer.record(entry({ messageId: 'after' }));
  await waitFor('direct again', () => store.committedMessages.has('after'));
  assert.deepEqual(journalFiles(dir), []);
});

test('a journal left by a crashed process is claimed and replayed; replaying it twice inserts nothing twice', async () => {
  const dir = join(tempFolder(), 'journal');
  const path = join(tempFolder(), 'db.sqlite');
  // Make a journal the way a crash leaves one: rows acknowledged from it, the process gone.
  const first = await setup({ journalDir: dir }, path);
  first.store.fail = true;
  for (let i = 0; i < 25; i++) first.writer.record(entry({ messageId: `c${i}`, payload: { i, b: new Uint8Array([i]) } }));
  let acked = false;
  first.writer.afterDurable(() => (acked = true));
  await waitFor('journaled', () => acked);
  const [name] = journalFiles(dir);
  const content = readFileSync(join(dir, name!));
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const key = journalKey(`sqlite:${path}`);
  writeFileSync(join(dir, `audit-${key}-crashed.${dead}.ndjson`), content);
  writeFileSync(join(dir, `audit-${key}-crashed-again.${dead}.ndjson`), content);

  const second = await setup({ journalDir: dir }, path);
  await waitFor('orphans replayed', () => second.writer.stats().orphans === 0 && second.store.committed.size >= 25);
  await second.writer.flush(2000);
  const rows = await allRows(second.store);
  assert.equal(rows.length, 25);
  const payload = rows.find((r) => r.messageId === 'c3')!;
  assert.deepEqual(JSON.parse(payload.payload!), { i: 3, b: 'Aw==' });
  const exact = decodePayload(payload.payload, payload.payloadBin) as { b: Uint8Array };
  assert.deepEqual([...exact.b], [3], 'binary values survive the journal');
  assert.deepEqual(
    journalFiles(dir).filter((f) => f.includes('crashed')),
    [],
    'replayed orphans are deleted'
  );
});

test('a journal that cannot be written: healthy is false, and past maxQueue the oldest rows are dropped, their callbacks never run', async () => {
  const root = tempFolder();
  const blocked = join(root, 'not-a-folder');
  writeFileSync(blocked, 'x');
  const { store, writer, logger } = await setup({ journalDir: blocked, maxQueue: 10, retryMinMs: 20, retryMaxMs: 40, probeMs: 30 });
  assert.equal(writer.healthy, false, 'the start probe found the journal folder unusable');
  assert.ok(logger.has('error', /journal cannot be written/));
  store.fail = true;
  let first = 0;
  for (let i = 0; i < 5; i++) writer.record(entry({ messageId: `old${i}` }));
  writer.afterDurable(() => first++);
  await waitFor('held', () => writer.stats().held === 5);
  let last = 0;
  for (let i = 0; i < 10; i++) writer.record(entry({ messageId: `new${i}` }));
  writer.afterDurable(() => last++);
  await waitFor('dropped', () => writer.stats().dropped === 5);
  assert.ok(writer.stats().held <= 10);
  assert.ok(logger.has('error', /audit rows lost/));
  store.fail = false;
  await waitFor('held rows written', () => last === 1);
  assert.equal(first, 0, 'rows that were dropped are never acknowledged');
  assert.deepEqual((await allRows(store)).map((r) => r.messageId), Array.from({ length: 10 }, (_, i) => `new${i}`));
  rmSync(blocked);
  await waitFor('healthy again', () => writer.healthy, 2000);
});

test('at maxQueue the journal takes the whole queue at once; every row still reaches the database', async () => {
  const { store, writer } = await setup({ maxQueue: 50, retryMinMs: 20 });
  store.delayMs = 50;
  let acked = false;
  for (let i = 0; i < 60; i++) writer.record(entry({ messageId: `q${i}` }));
  writer.afterDurable(() => (acked = true));
  assert.equal(writer.stats().queued, 10, 'the first 50 went to the journal synchronously');
  assert.equal(writer.stats().mode, 'journal');
  assert.ok(writer.stats().journalBytes > 0);
  await waitFor('acked', () => acked, 2000);
  await waitFor('all in the database', async () => (await allRows(store)).length === 60, 5000);
  await waitFor('direct', () => writer.stats().mode === 'direct', 5000);
});

test('close journals rows still waiting on a hung write; the next writer replays them', async () => {
  const dir = join(tempFolder(), 'journal');
  const path = join(tempFolder(), 'db.sqlite');
  const first = await setup({ journalDir: dir, slowWriteMs: 60_000 }, path);
  first.store.delayMs = 3000;
  for (let i = 0; i < 7; i++) first.writer.record(entry({ messageId: `h${i}` }));
  await waitFor('in flight', () => first.store.writes.length === 1);
  first.writer.record(entry({ messageId: 'queued' }));
  await first.writer.close();
  assert.equal(first.writer.stats().queued, 0);
  const stop = journalFiles(dir).filter((f) => f.includes('.stop.'));
  assert.equal(stop.length, 1);
  // After close, a late record still lands in the journal rather than nowhere.
  first.writer.record(entry({ messageId: 'late' }));
  const second = await setup({ journalDir: dir }, path);
  await waitFor('replayed', async () => (await allRows(second.store)).length === 9);
});

test('rows held while both the database and the journal failed go to the journal once it works, and on to the database', async () => {
  const root = tempFolder();
  const blocked = join(root, 'journal');
  writeFileSync(blocked, 'x');
  const { store, writer } = await setup({ journalDir: blocked, retryMinMs: 20, retryMaxMs: 40, probeMs: 30 });
  store.fail = true;
  let acked = false;
  for (let i = 0; i < 5; i++) writer.record(entry({ messageId: `h${i}` }));
  writer.afterDurable(() => (acked = true));
  await waitFor('held', () => writer.stats().held === 5);
  assert.equal(acked, false);
  rmSync(blocked); // the journal folder can be made again; the database is still down
  await waitFor('journaled and acknowledged', () => acked);
  assert.equal(writer.stats().held, 0);
  assert.equal(writer.stats().mode, 'journal');
  assert.equal((await allRows(store)).length, 0);
  store.fail = false;
  await waitFor('replayed', () => writer.stats().mode === 'direct', 5000);
  assert.deepEqual((await allRows(store)).map((r) => r.messageId), ['h0', 'h1', 'h2', 'h3', 'h4']);
  assert.deepEqual(journalFiles(blocked), []);
});
