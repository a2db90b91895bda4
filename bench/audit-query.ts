/**
 * How long one page of `zenconn audit` / `GET /api/audit` takes on a big audit table.
 *
 *   node dist/bench/audit-query.js                                   # SQLite, 10,000,000 rows in ./data/bench/audit-10m.db
 *   node dist/bench/audit-query.js --database postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Daudit_bench
 *   node dist/bench/audit-query.js --rows 1000000 --runs 9
 *
 * Fills the `audit` table up to `--rows` rows (once: a table that already has them is
 * reused), then times each query of QUERIES `--runs` times through the store's
 * `queryAudit` (what the CLI and the API call) and prints the median and the slowest.
 *
 * The rows: 30 days ending now; 80 % broadcast/event pairs sharing a message id, the
 * rest subscribes, sessions opening and closing, errors (1 %), refusals; 2,000 channels
 * and 100,000 sessions with a skewed popularity (a few busy ones, a long tail); 70 % of
 * sessions with a user among 20,000; payloads of about 80 bytes. Generation is
 * deterministic (a seeded PRNG), so two runs build the same table.
 *
 * To load fast the audit indexes are dropped while an empty table is filled and built
 * afterwards (the migration's own CREATE INDEX statements). Not part of `npm test`.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { availableParallelism, cpus, totalmem } from 'node:os';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createStore } from '../src/store/open-store.js';
import { parseStoreUrl } from '../src/store/store-url.js';
import { sqliteMigrations } from '../src/store/migrations/sqlite.js';
import { postgresMigrations } from '../src/store/migrations/postgres.js';
import type { Store } from '../src/store/store.js';
import { parseFilter, queryPage, type AuditFilter } from '../src/audit/audit-query.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const DATABASE = args.get('database') ?? 'sqlite:./data/bench/audit-10m.db';
const ROWS = Number(args.get('rows') ?? 10_000_000);
const RUNS = Number(args.get('runs') ?? 7);
const PAGE = Number(args.get('limit') ?? 100);

const DAY = 86_400_000;
const END = Date.parse('2026-01-31T00:00:00.000Z');
const START = END - 30 * DAY;
const CHANNELS = 2000;
const SESSIONS = 100_000;
const USERS = 20_000;

/** mulberry32: a small seeded PRNG, so the table is the same every time. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** A UUID v7 for time `ms` (so message lookups find their rows by the time inside). */
function v7(ms: number, rnd: () => number): string {
  const r = (): string => HEX[Math.floor(rnd() * 256)]!;
  const t = ms.toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8)}-7${r().slice(1)}${r()}-${HEX[0x80 | Math.floor(rnd() * 64)]}${r()}-${r()}${r()}${r()}${r()}${r()}${r()}`;
}

/** Skewed pick in [0, n): x^3 puts most of the mass on the first few. */
const skewed = (rnd: () => number, n: number): number => Math.floor(n * rnd() ** 3);
const sessionId = (i: number): string => `01900000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;
const userOf = (session: number): string | null => (session % 10 < 7 ? `user-${(session * 7919) % USERS}` : null);

type Row = [string, string | null, string, string, string | null, string | null, string, string, string | null, string | null, number | null];

/** Rows i .. i+n-1 (i even starts a broadcast pair on the same message). */
function* generate(from: number, count: number): Generator<Row> {
  const rnd = prng(0x5eed + from);
  const step = (END - START) / ROWS;
  for (let i = from; i < from + count; i++) {
    const ms = Math.floor(START + i * step);
    const at = new Date(ms).toISOString();
    const session = skewed(rnd, SESSIONS);
    const sid = sessionId(session);
    const user = userOf(session);
    const channel = `ch-${skewed(rnd, CHANNELS)}`;
    const k = rnd();
    if (k < 0.4) {
      const msg = v7(ms, rnd);
      const payload = JSON.stringify({ text: 'x'.repeat(60), n: i });
      yield [v7(ms, rnd), msg, at, 'bench', sid, user, 'in', 'broadcast', channel, payload, null];
      if (i + 1 < from + count) {
        i++;
        yield [v7(ms, rnd), msg, at, 'bench', sid, user, 'out', 'event', channel, payload, 1 + Math.floor(rnd() * 500)];
      }
    } else if (k < 0.8) {
      // The other half of the bulk: events the HTTP API sent (no session).
      const msg = v7(ms, rnd);
      const payload = JSON.stringify({ text: 'y'.repeat(60), n: i });
      yield [v7(ms, rnd), msg, at, 'bench', null, 'backend', rnd() < 0.5 ? 'in' : 'out', rnd() < 0.5 ? 'broadcast' : 'event', channel, payload, null];
    } else if (k < 0.9) {
      yield [v7(ms, rnd), null, at, 'bench', sid, user, rnd() < 0.5 ? 'in' : 'out', rnd() < 0.5 ? 'subscribe' : 'subscribed', channel, null, null];
    } else if (k < 0.97) {
      const open = rnd() < 0.5;
      yield [v7(ms, rnd), null, at, 'bench', sid, user, 'system', open ? 'session.open' : 'session.close', null, open ? '{"protocol":"json"}' : '{"code":1000}', null];
    } else if (k < 0.98) {
      yield [v7(ms, rnd), null, at, 'bench', sid, user, 'out', 'accepted', null, JSON.stringify(sid), 1];
    } else if (k < 0.99) {
      yield [v7(ms, rnd), null, at, 'bench', sid, user, 'out', 'error', rnd() < 0.5 ? '*' : channel, '["forbidden"]', 1];
    } else if (k < 0.995) {
      yield [v7(ms, rnd), null, at, 'bench', sid, user, 'out', 'unauthorized', `private.${channel}`, null, 1];
    } else {
      yield [v7(ms, rnd), null, at, 'bench', sid, user, 'in', 'rate-limited', null, null, null];
    }
  }
}

const INDEX_RE = /CREATE INDEX (audit_\w+) ON audit[^;]*;/g;

async function fillSqlite(path: string, have: number): Promise<void> {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF'); // a generator: nothing to lose
  db.pragma('cache_size = -262144');
  const indexes = [...sqliteMigrations[1]!.up.matchAll(INDEX_RE)].map((m) => ({ name: m[1]!, sql: m[0] }));
  if (have === 0) for (const i of indexes) db.exec(`DROP INDEX IF EXISTS ${i.name}`);
  const insert = db.prepare(
    `INSERT INTO audit (id, message_id, at, server_id, session_id, user_id, direction, type, channel, payload, recipients) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
  );
  const chunk = 100_000;
  const load = db.transaction((from: number, n: number) => {
    for (const r of generate(from, n)) insert.run(...r);
  });
  const t0 = Date.now();
  for (let i = have; i < ROWS; i += chunk) {
    load(i, Math.min(chunk, ROWS - i));
    if ((i / chunk) % 10 === 9) log(`  ${(i + chunk).toLocaleString('en')} rows (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  for (const i of indexes) {
    const t = Date.now();
    db.exec(i.sql.replace('CREATE INDEX', 'CREATE INDEX IF NOT EXISTS'));
    log(`  ${i.name}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  // What a server's audit thread runs when it opens the database (no full ANALYZE).
  const t = Date.now();
  db.pragma('optimize=0x10002');
  log(`  PRAGMA optimize: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

async function fillPostgres(url: string, have: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const indexes = [...postgresMigrations[1]!.up.matchAll(INDEX_RE)].map((m) => ({ name: m[1]!, sql: m[0] }));
  if (have === 0) for (const i of indexes) await client.query(`DROP INDEX IF EXISTS ${i.name}`);
  const chunk = 20_000;
  const t0 = Date.now();
  for (let i = have; i < ROWS; i += chunk) {
    const rows = [...generate(i, Math.min(chunk, ROWS - i))];
    const col = (c: number) => rows.map((r) => r[c]);
    await client.query(
      `INSERT INTO audit (id, message_id, at, server_id, session_id, user_id, direction, type, channel, payload, recipients)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::int[])`,
      [col(0), col(1), col(2), col(3), col(4), col(5), col(6), col(7), col(8), col(9), col(10)]
    );
    if ((i / chunk) % 50 === 49) log(`  ${(i + chunk).toLocaleString('en')} rows (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  await client.query(`SET maintenance_work_mem = '512MB'`);
  for (const i of indexes) {
    const t = Date.now();
    await client.query(i.sql.replace('CREATE INDEX', 'CREATE INDEX IF NOT EXISTS'));
    log(`  ${i.name}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  await client.query('VACUUM ANALYZE audit');
  await client.end();
}

function log(line: string): void {
  process.stderr.write(line + '\n');
}

/** The queries timed: a name and the filter, as `zenconn audit` flags would give it. */
function queries(): Array<{ name: string; filter: Record<string, string>; cursor?: boolean }> {
  const iso = (ms: number) => new Date(ms).toISOString();
  return [
    { name: 'newest page, no filter', filter: {} },
    { name: '--channel (busiest)', filter: { channel: 'ch-0' } },
    { name: '--channel (tail)', filter: { channel: `ch-${CHANNELS - 7}` } },
    { name: '--session (busy)', filter: { session: sessionId(3) } },
    { name: '--session (tail)', filter: { session: sessionId(SESSIONS - 11) } },
    { name: '--user', filter: { user: userOf(21)! } },
    { name: '--type error', filter: { type: 'error' } },
    { name: '--type event', filter: { type: 'event' } },
    { name: '--direction system', filter: { direction: 'system' } },
    { name: '--since/--until one hour, 10 days ago', filter: { since: iso(END - 10 * DAY), until: iso(END - 10 * DAY + 3_600_000) } },
    { name: '--channel --type event --since 1 day', filter: { channel: 'ch-1', type: 'event', since: iso(END - DAY) } },
    { name: '--channel (tail) --type error', filter: { channel: `ch-${CHANNELS - 7}`, type: 'error' } },
    { name: '--session (busy) --type error', filter: { session: sessionId(3), type: 'error' } },
    // Two unselective filters whose intersection is empty: one index range is read to the end.
    { name: 'worst: --channel (busiest) --type unauthorized (no match)', filter: { channel: 'ch-0', type: 'unauthorized' } },
    { name: '--user --direction in --until 20 days ago', filter: { user: userOf(42)!, direction: 'in', until: iso(END - 20 * DAY) } },
    { name: '--order asc --since 15 days ago', filter: { order: 'asc', since: iso(END - 15 * DAY) } },
    { name: 'next page (cursor) of --channel (busiest)', filter: { channel: 'ch-0' }, cursor: true },
    { name: '--message', filter: { message: 'LOOKUP' } }
  ];
}

async function timeQueries(store: Store): Promise<Array<{ name: string; rows: number; medianMs: number; maxMs: number }>> {
  const out: Array<{ name: string; rows: number; medianMs: number; maxMs: number }> = [];
  // A real message id from the middle of the table, for --message.
  const mid = await store.queryAudit({ ...emptyQuery(), since: new Date(START + 15 * DAY), type: 'broadcast', order: 'asc', limit: 1 });
  for (const q of queries()) {
    const flags = { ...q.filter };
    if (flags.message === 'LOOKUP') flags.message = mid[0]?.messageId ?? 'none';
    const filter: AuditFilter = parseFilter((n) => flags[n] ?? null, new Date(END));
    let after: { at: Date; id: string } | null = null;
    if (q.cursor) {
      const first = await queryPage(store, filter, null, PAGE);
      const last = first.rows[first.rows.length - 1]!;
      after = { at: last.at, id: last.id };
    }
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      const page = await queryPage(store, filter, after, PAGE);
      times.push(performance.now() - t);
      rows = page.rows.length;
    }
    times.sort((a, b) => a - b);
    out.push({ name: q.name, rows, medianMs: times[Math.floor(times.length / 2)]!, maxMs: times[times.length - 1]! });
  }
  return out;
}

function emptyQuery() {
  return { since: null, until: null, channel: null, sessionId: null, userId: null, type: null, direction: null, messageId: null, after: null, order: 'desc' as const, limit: 1 };
}

async function count(store: Store): Promise<number> {
  // The newest row's position tells how far a previous fill got (rows are made oldest first).
  const newest = await store.queryAudit({ ...emptyQuery(), limit: 1 });
  if (newest.length === 0) return 0;
  const step = (END - START) / ROWS;
  return Math.min(ROWS, Math.round((newest[0]!.at.getTime() - START) / step) + 1);
}

async function main(): Promise<void> {
  const where = parseStoreUrl(DATABASE);
  if (where.kind === 'sqlite' && where.path !== ':memory:') mkdirSync(dirname(where.path), { recursive: true });
  let store = createStore(DATABASE);
  await store.open();
  const have = await count(store);
  if (have < ROWS) {
    log(`filling ${DATABASE} from ${have.toLocaleString('en')} to ${ROWS.toLocaleString('en')} rows…`);
    await store.close();
    const t = Date.now();
    if (where.kind === 'sqlite') await fillSqlite(where.path, have);
    else await fillPostgres(where.url, have);
    log(`filled in ${((Date.now() - t) / 1000).toFixed(0)} s`);
    store = createStore(DATABASE);
    await store.open();
  }
  const results = await timeQueries(store);
  await store.close();
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`audit table: ${ROWS.toLocaleString('en')} rows, ${where.kind}; page of ${PAGE}; ${RUNS} runs each; ${availableParallelism()} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`);
  console.log('');
  console.log('| query | rows | median ms | slowest ms |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of results) console.log(`| ${r.name} | ${r.rows} | ${r.medianMs.toFixed(1)} | ${r.maxMs.toFixed(1)} |`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
