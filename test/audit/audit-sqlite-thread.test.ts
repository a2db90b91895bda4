import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteAuditThread } from '../../src/store/sqlite-audit-thread.js';
import { AuditWriter } from '../../src/audit/audit-writer.js';
import { newId, uuidV7Batch } from '../../src/protocol/ids.js';
import { rejectedPath } from '../../src/audit/audit-journal.js';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { AuditRecord } from '../../src/store/store.js';
import { MemoryLogger, allRows, entry, tempFolder, waitFor } from './helpers.js';

function row(over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id: newId(),
    messageId: null,
    at: new Date(),
    serverId: 'srv',
    sessionId: null,
    userId: null,
    direction: 'system',
    type: 'session.open',
    channel: null,
    recipients: null,
    payload: '{"a":1}',
    payloadBin: new Uint8Array([0x81, 0xa1, 0x61, 0x01]),
    ...over
  };
}

test('the thread writes and deletes on its own connection; the store sees its commits', async () => {
  const path = join(tempFolder(), 't.db');
  const store = new SqliteStore(path);
  await store.open();
  const thread = new SqliteAuditThread(path);
  try {
    const old = row({ at: new Date(Date.now() - 86_400_000) });
    const rows = [old, row(), row()];
    await thread.write(rows);
    await thread.write(rows); // idempotent
    const back = await allRows(store);
    assert.deepEqual(back.map((r) => r.id), rows.map((r) => r.id));
    assert.deepEqual([...back[1]!.payloadBin!], [0x81, 0xa1, 0x61, 0x01], 'bytes cross the thread boundary');
    assert.equal(await thread.deleteBefore(new Date(Date.now() - 3_600_000), 10), 1);
    assert.equal((await allRows(store)).length, 2);
  } finally {
    await thread.close();
    await store.close();
  }
});

test('a row the database refuses keeps its SQLite code across the thread: set aside, the rest of the batch written', async () => {
  const dir = tempFolder();
  const path = join(dir, 't.db');
  const store = new SqliteStore(path);
  await store.open();
  const thread = new SqliteAuditThread(path);
  const logger = new MemoryLogger();
  const writer = new AuditWriter({ store, write: (r) => thread.write(r), serverId: 'srv', journalKey: 'abcdefabcdef', journalDir: join(dir, 'journal'), logger });
  try {
    await assert.rejects(thread.write([row({ direction: 'sideways' })]), { code: 'SQLITE_CONSTRAINT_CHECK' });
    writer.record(entry({ messageId: 'good-1' }));
    writer.record(entry({ messageId: 'bad', direction: 'sideways' as 'in' }));
    writer.record(entry({ messageId: 'good-2' }));
    let acked = false;
    writer.afterDurable(() => (acked = true));
    await waitFor('acked', () => acked);
    assert.deepEqual((await allRows(store)).map((r) => r.messageId), ['good-1', 'good-2']);
    assert.equal(writer.stats().rejected, 1);
    const aside = rejectedPath(join(dir, 'journal'), 'abcdefabcdef');
    assert.ok(existsSync(aside));
    assert.equal(JSON.parse(readFileSync(aside, 'utf8')).message_id, 'bad');
    assert.ok(logger.has('error', /refused by the database/));
  } finally {
    await writer.close();
    await thread.close();
    await store.close();
  }
});

test('a closed thread refuses new calls', async () => {
  const thread = new SqliteAuditThread(join(tempFolder(), 'none.db'));
  await thread.close();
  await assert.rejects(thread.write([row()]), /closed/);
});

test('a missing database file fails the call with the reason instead of creating one', async () => {
  const path = join(tempFolder(), 'missing.db');
  const thread = new SqliteAuditThread(path);
  try {
    await assert.rejects(thread.write([row()]), /unable to open|no such|directory does not exist/i);
    assert.equal(existsSync(path), false);
  } finally {
    await thread.close();
  }
});

test('row ids are UUID v7, increasing, unique, stamped with the current millisecond', () => {
  const before = Date.now();
  const ids = [...uuidV7Batch(5000), ...uuidV7Batch(1), ...uuidV7Batch(300)];
  const after = Date.now() + 2; // a run of 4096 in one millisecond borrows the next
  assert.equal(new Set(ids).size, ids.length);
  for (let i = 0; i < ids.length; i++) {
    assert.match(ids[i]!, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    if (i > 0) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} !< ${ids[i]}`);
    const ms = parseInt(ids[i]!.slice(0, 8) + ids[i]!.slice(9, 13), 16);
    assert.ok(ms >= before && ms <= after + 5, `timestamp ${ms} outside ${before}..${after}`);
  }
  assert.ok(newId() > ids[0]!.slice(0, 8), 'the same time base as newId()');
});

test('the main connection stops checkpointing; the thread does it, and the WAL starts over instead of growing', async () => {
  const path = join(tempFolder(), 'wal.db');
  const store = new SqliteStore(path);
  await store.open();
  store.disableAutoCheckpoint();
  const thread = new SqliteAuditThread(path, 5000, 60_000); // no periodic checkpoint during the test
  thread.start();
  const raw = new Database(path);
  try {
    for (let b = 0; b < 20; b++) await store.writeAudit(Array.from({ length: 500 }, () => row({ payload: JSON.stringify({ text: 'x'.repeat(400) }) })));
    const frames = (): number => (raw.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0]!.log;
    // Past SQLite's automatic point (1000 pages): nothing on the main connection checkpointed.
    assert.ok(statSync(`${path}-wal`).size > 1000 * 4096, `WAL of ${statSync(`${path}-wal`).size} bytes`);
    await thread.checkpoint();
    await store.writeAudit([row()]); // the first commit after a complete checkpoint starts the WAL over
    assert.ok(frames() < 100, `WAL still holds ${frames()} frames`);
  } finally {
    raw.close();
    await thread.close();
    await store.close();
  }
});
