import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { TEST_JWT_SECRET } from '../helpers/server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { testPostgresUrl, urlWithPort, withSchema, type TestSchema } from '../helpers/pg.js';
import { createStore } from '../../src/store/open-store.js';
import type { AuditWriter } from '../../src/audit/audit-writer.js';
import { Publisher, allRows, startAuditServer, tempFolder, waitFor } from './helpers.js';

const ackedCount = (pubs: Publisher[]): number => pubs.reduce((n, p) => n + p.acked.length, 0);
const pgPort = Number(new URL(testPostgresUrl()).port || 5432);

/** `serve` arguments for a temp folder and database. */
function serveArgs(dir: string, database: string): string[] {
  mkdirSync(join(dir, 'public'), { recursive: true });
  return [
    'serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', database,
    '--audit-journal-dir', join(dir, 'journal'), '--spool-dir', join(dir, 'spool'), '--access-log', 'off',
    '--jwt-secret', TEST_JWT_SECRET, '--log-level', 'warn'
  ];
}

/** The `{seq}` of every broadcast row (`in` and `out`) in the table, counted. */
type Seen = { in: Map<string, number>; out: Map<string, number> };
function tally(rows: Array<{ direction: string; payload: string | null }>): Seen {
  const seen: Seen = { in: new Map(), out: new Map() };
  for (const r of rows) {
    const seq = (JSON.parse(r.payload!) as { seq: string }).seq;
    const m = r.direction === 'in' ? seen.in : seen.out;
    m.set(seq, (m.get(seq) ?? 0) + 1);
  }
  return seen;
}

function assertComplete(acked: string[], seen: Seen): void {
  const missing = acked.filter((s) => !seen.in.has(s) || !seen.out.has(s));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged messages missing from the audit table`);
  for (const m of [seen.in, seen.out]) {
    const twice = [...m].filter(([, n]) => n > 1);
    assert.deepEqual(twice.slice(0, 10), [], 'a message recorded twice');
  }
}

/** After a restart: waits for the journal folder to be replayed, then checks the channel's rows against what was acknowledged. */
async function assertReplayed(dir: string, schema: TestSchema, channel: string, acked: string[]): Promise<void> {
  await waitFor('journal replayed', () => readdirSync(join(dir, 'journal')).filter((f) => f.endsWith('.ndjson')).length === 0, 20_000);
  const rows = await schema.query<{ direction: string; payload: string }>(
    `SELECT direction, payload::text AS payload FROM audit WHERE channel = '${channel}' AND type IN ('broadcast', 'event')`
  );
  assertComplete(acked, tally(rows));
}

async function publishers(port: number, channel: string): Promise<Publisher[]> {
  return Promise.all(['p1', 'p2', 'p3'].map((n) => Publisher.start(port, n, channel)));
}

/**
 * Starts `serve` on `database`, has three clients publish on `channel`, kills it with
 * SIGKILL mid-traffic, starts it again and hands what was acknowledged to `check`.
 */
async function crashUnderTraffic(dir: string, database: string, channel: string, check: (acked: string[]) => Promise<void>): Promise<void> {
  let zen: ZenProcess | null = await startZen(serveArgs(dir, database));
  let again: ZenProcess | null = null;
  const pubs = await publishers(zen.port, channel);
  try {
    // A random point in the traffic, not a random time.
    const target = 150 + Math.floor(Math.random() * 450);
    await waitFor(`${target} acknowledgements`, () => ackedCount(pubs) >= target);
    zen.child.kill('SIGKILL');
    await zen.exited;
    zen = null;
    const acked = pubs.flatMap((p) => p.acked);
    assert.ok(acked.length > 100, `only ${acked.length} messages acknowledged`);
    again = await startZen(serveArgs(dir, database));
    await check(acked);
  } finally {
    for (const p of pubs) p.close();
    zen?.child.kill('SIGKILL');
    await again?.stop();
  }
}

test('kill -9 under traffic (SQLite): every acknowledged message is in the audit table after the restart', async () => {
  const dir = tempFolder();
  const db = `sqlite:${join(dir, 'zen.db')}`;
  await crashUnderTraffic(dir, db, 'crash', async (acked) => {
    const store = createStore(db);
    await store.open();
    try {
      const rows = await allRows(store, { channel: 'crash' });
      assertComplete(acked, tally(rows.filter((r) => r.type === 'broadcast' || r.type === 'event')));
    } finally {
      await store.close();
    }
  });
});

test('kill -9 under traffic (PostgreSQL, acks from the journal by default): the restart replays it, nothing missing, nothing twice', async () => {
  const schema = await withSchema();
  const dir = tempFolder();
  try {
    await crashUnderTraffic(dir, schema.url, 'crash-pg', (acked) => assertReplayed(dir, schema, 'crash-pg', acked));
  } finally {
    await schema.drop();
  }
});

test('kill -9 while PostgreSQL hangs (--audit-ack-from database: acks from the journal once writes are slow): the restart replays the journal, nothing missing, nothing twice', async () => {
  const schema = await withSchema();
  const proxy = await startTcpProxy({ port: pgPort });
  const dir = tempFolder();
  const db = urlWithPort(schema.url, proxy.port);
  const args = (): string[] => [...serveArgs(dir, db), '--audit-ack-from', 'database'];
  let zen: ZenProcess | null = await startZen(args());
  let again: ZenProcess | null = null;
  const pubs = await publishers(zen.port, 'hang');
  try {
    await waitFor('traffic', () => ackedCount(pubs) >= 100);
    const beforeHang = ackedCount(pubs);
    proxy.cut('hold'); // the network goes silent: writes neither fail nor commit
    await waitFor('acknowledgements while the database hangs', () => ackedCount(pubs) - beforeHang > 50);
    const duringHang = pubs.reduce((n, p) => n + p.acked.length, 0) - beforeHang;
    assert.ok(duringHang > 50, `only ${duringHang} acknowledgements while the database hung`);
    assert.ok(readdirSync(join(dir, 'journal')).some((f) => f.endsWith('.ndjson')), 'acknowledged from the journal');
    zen.child.kill('SIGKILL');
    await zen.exited;
    zen = null;
    const acked = pubs.flatMap((p) => p.acked);
    proxy.restore();
    again = await startZen(args());
    await assertReplayed(dir, schema, 'hang', acked);
  } finally {
    for (const p of pubs) p.close();
    zen?.child.kill('SIGKILL');
    await again?.stop();
    await proxy.close();
    await schema.drop();
  }
});

test('PostgreSQL goes away during traffic and comes back (--audit-ack-from database): acks continue from the journal, then everything is in the table once', async () => {
  const schema = await withSchema();
  const proxy = await startTcpProxy({ port: pgPort });
  const srv = await startAuditServer({ database: urlWithPort(schema.url, proxy.port), 'audit-ack-from': 'database' });
  const writer = srv.node.audit as AuditWriter;
  const pubs = await publishers(srv.port, 'outage');
  try {
    await waitFor('traffic', () => ackedCount(pubs) >= 100);
    const before = ackedCount(pubs);
    proxy.cut(); // a restart: connections dropped, new ones refused
    await waitFor('acknowledgements during the outage', () => ackedCount(pubs) - before > 50 && writer.stats().mode === 'journal');
    const during = pubs.reduce((n, p) => n + p.acked.length, 0) - before;
    assert.ok(during > 50, `only ${during} acknowledgements during the outage`);
    assert.equal(writer.stats().mode, 'journal');
    assert.equal(writer.healthy, true, 'the journal takes the rows: /readyz audit stays true');
    proxy.restore();
    const atRestore = ackedCount(pubs);
    await waitFor('traffic after the restore', () => ackedCount(pubs) >= atRestore + 50);
    await Promise.all(pubs.map((p) => p.drain()));
    const acked = pubs.flatMap((p) => p.acked);
    await waitFor('back to the database', () => writer.stats().mode === 'direct', 15_000);
    await srv.node.audit.flush(5000);
    const rows = await schema.query<{ direction: string; payload: string }>(
      `SELECT direction, payload::text AS payload FROM audit WHERE channel = 'outage' AND type IN ('broadcast', 'event')`
    );
    assertComplete(acked, tally(rows));
    const journal = srv.config.auditJournalDir;
    assert.deepEqual(existsSync(journal) ? readdirSync(journal).filter((f) => f.endsWith('.ndjson')) : [], []);
  } finally {
    for (const p of pubs) p.close();
    await srv.stop();
    await proxy.close();
    await schema.drop();
  }
});
