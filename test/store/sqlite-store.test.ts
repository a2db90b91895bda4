import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { sqliteMigrations } from '../../src/store/migrations/sqlite.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { closeRecord, openRecord, serverRecord, sessionView, storeContract } from './store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'zenconn-sqlite-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A database path in a directory that does not exist yet. */
const freshPath = (): string => join(root, `case-${++n}`, 'nested', 'zenconn.db');

/** A second, raw connection to the same file, as a human with the sqlite3 shell would have. */
function raw(path: string): Database.Database {
  return new Database(path, { readonly: true });
}

storeContract(async () => {
  const path = freshPath();
  const store = new SqliteStore(path);
  await store.open();
  const db = raw(path);
  return {
    store,
    async sessions() {
      return (db.prepare('SELECT * FROM sessions ORDER BY id').all() as Array<Record<string, unknown>>).map(sessionView);
    },
    async done() {
      db.close();
      await store.close();
    }
  };
});

test('open creates the parent directory and the contract tables, columns and indexes', async () => {
  const path = freshPath();
  const store = new SqliteStore(path);
  await store.open();
  assert.ok(existsSync(path));
  const db = raw(path);
  try {
    const columns = (table: string) =>
      (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name);
    assert.deepEqual(columns('servers'), [
      'id', 'role', 'parent_id', 'hostname', 'pid', 'address', 'started_at', 'last_seen_at', 'stopped_at'
    ]);
    assert.deepEqual(columns('sessions'), [
      'id', 'server_id', 'remote_addr', 'user_agent', 'user_id', 'protocol', 'connected_at', 'disconnected_at',
      'close_code', 'bytes_in', 'bytes_out', 'messages_in', 'messages_out'
    ]);
    assert.deepEqual(columns('schema_migrations'), ['version', 'name', 'applied_at']);
    const indexes = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`).all() as Array<{
      name: string;
      sql: string;
    }>;
    assert.match(indexes.find((i) => i.name === 'sessions_open_by_server_idx')!.sql, /WHERE disconnected_at IS NULL/);
    assert.match(indexes.find((i) => i.name === 'servers_liveness_idx')!.sql, /\(stopped_at, last_seen_at\)/);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  } finally {
    db.close();
    await store.close();
  }
});

test('timestamps are stored as ISO-8601 UTC text with milliseconds', async () => {
  const path = freshPath();
  const store = new SqliteStore(path);
  await store.open();
  await store.registerServer(serverRecord('s1'));
  await store.writeBatch({ opens: [openRecord('a', 's1')], closes: [closeRecord('a')] });
  await store.close();
  const db = raw(path);
  const row = db.prepare('SELECT connected_at, disconnected_at FROM sessions').get() as Record<string, string>;
  const server = db.prepare('SELECT started_at, last_seen_at FROM servers').get() as Record<string, string>;
  const applied = db.prepare('SELECT applied_at FROM schema_migrations').pluck().get() as string;
  db.close();
  for (const v of [...Object.values(row), ...Object.values(server), applied]) {
    assert.match(v, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  assert.equal(row.connected_at, '2026-11-27T06:30:47.123Z');
});

test('re-opening a migrated database applies nothing and keeps the data', async () => {
  const path = freshPath();
  const first = new SqliteStore(path);
  await first.open();
  await first.open();
  await first.registerServer(serverRecord('s1'));
  await first.close();
  const second = new SqliteStore(path);
  await second.open();
  assert.equal((await second.listServers()).length, 1);
  await second.close();
  const db = raw(path);
  assert.deepEqual(db.prepare('SELECT version, name FROM schema_migrations').all(), sqliteMigrations.map((m) => ({ version: m.version, name: m.name })));
  db.close();
});

test('an appended migration is applied once on the next open', async () => {
  const path = freshPath();
  const v1 = new SqliteStore(path);
  await v1.open();
  await v1.close();
  const next = sqliteMigrations.length + 1;
  const migrations = [...sqliteMigrations, { version: next, name: 'later', up: 'CREATE TABLE later (id INTEGER PRIMARY KEY)' }];
  for (let i = 0; i < 2; i++) {
    const v2 = new SqliteStore(path, { migrations });
    await v2.open();
    await v2.close();
  }
  const db = raw(path);
  assert.deepEqual(db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(), migrations.map((m) => m.version));
  db.close();
});

test('a mis-numbered migration list is refused at open', async () => {
  const store = new SqliteStore(':memory:', {
    migrations: [...sqliteMigrations, { version: sqliteMigrations.length + 2, name: 'skips_one', up: 'SELECT 1' }]
  });
  await assert.rejects(store.open(), new RegExp(`expected ${sqliteMigrations.length + 1}`));
});

test('an in-memory database works and an unopenable path rejects with ERR_STORE_UNREACHABLE', async () => {
  const mem = new SqliteStore(':memory:');
  await mem.open();
  assert.equal(await mem.ping(), true);
  await mem.close();
  const blocked = new SqliteStore(join(root, 'file-not-dir'));
  await blocked.open();
  await blocked.close();
  const bad = new SqliteStore(join(root, 'file-not-dir', 'x.db'));
  await assert.rejects(bad.open(), { code: 'ERR_STORE_UNREACHABLE' });
});
