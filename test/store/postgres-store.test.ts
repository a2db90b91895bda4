import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { postgresMigrations } from '../../src/store/migrations/postgres.js';
import { createStore } from '../../src/store/open-store.js';
import { PostgresStore, parseSearchPath } from '../../src/store/postgres-store.js';
import { testPostgresUrl, urlWithPort, withSchema, type TestSchema } from '../helpers/pg.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';
import { closeRecord, openRecord, serverRecord, sessionView, storeContract } from './store-contract.js';

// Every test gets its own schema (zc_test_<random>), dropped when it ends.
storeContract(async () => {
  const db = await withSchema();
  const store = createStore(db.url);
  await store.open();
  return {
    store,
    async sessions() {
      return (await db.query('SELECT * FROM sessions ORDER BY id')).map(sessionView);
    },
    async done() {
      await store.close();
      await db.drop();
    }
  };
});

let db: TestSchema;
before(async () => {
  db = await withSchema();
});
after(async () => {
  await db.drop();
});

/** The tables in `public` (a run of zenconn with the README's URL leaves its own there: the test compares before and after). */
async function publicTables(): Promise<string[]> {
  const rows = await db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
  return rows.map((r) => r.table_name);
}

test('open creates the contract tables and columns in the schema named by the URL options', async () => {
  const publicBefore = await publicTables();
  const store = createStore(db.url);
  await store.open();
  await store.close();
  const columns = await db.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
    `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
    [db.schema]
  );
  const of = (table: string) => columns.filter((c) => c.table_name === table).map((c) => `${c.column_name} ${c.data_type}`);
  assert.deepEqual(of('servers'), [
    'id text', 'role text', 'parent_id text', 'hostname text', 'pid integer', 'address text',
    'started_at timestamp with time zone', 'last_seen_at timestamp with time zone', 'stopped_at timestamp with time zone'
  ]);
  assert.deepEqual(of('sessions'), [
    'id text', 'server_id text', 'remote_addr text', 'user_agent text', 'user_id text', 'protocol text',
    'connected_at timestamp with time zone', 'disconnected_at timestamp with time zone', 'close_code integer',
    'bytes_in bigint', 'bytes_out bigint', 'messages_in bigint', 'messages_out bigint'
  ]);
  assert.deepEqual(of('schema_migrations'), ['version integer', 'name text', 'applied_at timestamp with time zone']);
  const indexes = await db.query<{ indexname: string; indexdef: string }>(
    `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1`,
    [db.schema]
  );
  assert.match(indexes.find((i) => i.indexname === 'sessions_open_by_server_idx')!.indexdef, /WHERE \(disconnected_at IS NULL\)/);
  assert.match(indexes.find((i) => i.indexname === 'servers_liveness_idx')!.indexdef, /\(stopped_at, last_seen_at\)/);
  assert.deepEqual(await publicTables(), publicBefore, 'nothing is created in public');
});

test('re-opening a migrated schema applies nothing; an appended migration applies once', async () => {
  for (let i = 0; i < 2; i++) {
    const store = createStore(db.url);
    await store.open();
    await store.close();
  }
  assert.deepEqual(
    await db.query('SELECT version, name FROM schema_migrations ORDER BY version'),
    postgresMigrations.map((m) => ({ version: m.version, name: m.name }))
  );
  const next = postgresMigrations.length + 1;
  const migrations = [...postgresMigrations, { version: next, name: 'later', up: 'CREATE TABLE later (id bigserial PRIMARY KEY)' }];
  for (let i = 0; i < 2; i++) {
    const store = new PostgresStore(db.url, { migrations });
    await store.open();
    await store.close();
  }
  assert.deepEqual(
    (await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).map((r) => r.version),
    migrations.map((m) => m.version)
  );
});

test('stores migrating at the same moment on a schema that does not exist yet all succeed', async () => {
  const fresh = await withSchema({ create: false });
  try {
    const stores = Array.from({ length: 4 }, () => createStore(fresh.url));
    await Promise.all(stores.map((s) => s.open()));
    await stores[0]!.registerServer(serverRecord('s1'));
    assert.equal((await stores[3]!.listServers()).length, 1);
    await Promise.all(stores.map((s) => s.close()));
    assert.deepEqual(await fresh.query('SELECT version FROM schema_migrations ORDER BY version'), postgresMigrations.map((m) => ({ version: m.version })));
  } finally {
    await fresh.drop();
  }
});

test('an unreachable server rejects open() with ERR_STORE_UNREACHABLE in under 5 s, password masked', async () => {
  const u = new URL(urlWithPort(testPostgresUrl(), 1));
  u.username = 'zc';
  u.password = 'hunter2';
  const url = u.toString();
  const started = Date.now();
  await assert.rejects(createStore(url).open(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_STORE_UNREACHABLE');
    assert.doesNotMatch(err.message, /hunter2/);
    assert.match(err.message, /zc:\*\*\*\*@127\.0\.0\.1:1\//);
    assert.match(err.message, /ECONNREFUSED/);
    return true;
  });
  assert.ok(Date.now() - started < 5000);
});

test('a server that accepts but never answers rejects open() in under 5 s', async () => {
  const proxy = await startTcpProxy({ port: Number(new URL(testPostgresUrl()).port || 5432) });
  proxy.cut('hold');
  const started = Date.now();
  try {
    await assert.rejects(createStore(urlWithPort(db.url, proxy.port)).open(), { code: 'ERR_STORE_UNREACHABLE' });
    assert.ok(Date.now() - started < 5000);
  } finally {
    await proxy.close();
  }
});

test('a lost connection makes calls reject, never crashes the process, and the pool recovers', async () => {
  const proxy = await startTcpProxy({ port: Number(new URL(testPostgresUrl()).port || 5432) });
  let lost = 0;
  const logger = { info: () => undefined, warn: (_o: object, msg: string) => void (msg === 'idle database connection lost' && lost++), error: () => undefined };
  const store = new PostgresStore(urlWithPort(db.url, proxy.port), { connectTimeoutMs: 1000, queryTimeoutMs: 2000, logger });
  try {
    await store.open();
    await store.registerServer(serverRecord('lost-1'));
    assert.ok(proxy.connections > 0);
    proxy.cut(); // the idle pooled connection dies: the pool's 'error' must be handled
    await waitFor("the pool's 'error' for the idle connection", () => lost > 0);
    await assert.rejects(store.writeBatch({ opens: [openRecord('l1', 'lost-1')], closes: [] }));
    assert.equal(await store.ping(), false);
    proxy.restore();
    await store.writeBatch({ opens: [openRecord('l1', 'lost-1')], closes: [closeRecord('l1')] });
    assert.equal(await store.ping(), true);
    const rows = await db.query(`SELECT id, close_code FROM sessions WHERE server_id = 'lost-1'`);
    assert.deepEqual(rows, [{ id: 'l1', close_code: 1000 }]);
  } finally {
    await store.close();
    await proxy.close();
  }
});

test('createStore accepts postgresql:// too and refuses other schemes with ERR_STORE_URL', () => {
  assert.equal(createStore(db.url.replace(/^postgres:/, 'postgresql:')).kind, 'postgres');
  assert.throws(() => createStore('mysql://root:pw@localhost/x'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_STORE_URL');
    assert.doesNotMatch(err.message, /:pw@/);
    return true;
  });
});

test('parseSearchPath reads quoted and unquoted names', () => {
  assert.deepEqual(parseSearchPath('"$user", public'), ['$user', 'public']);
  assert.deepEqual(parseSearchPath('my_schema'), ['my_schema']);
  assert.deepEqual(parseSearchPath('"Odd, ""Name""",public'), ['Odd, "Name"', 'public']);
  assert.deepEqual(parseSearchPath(''), []);
});
