/**
 * `npm run bench`: start each server row in turn, drive it with the same load
 * (load.ts) at each size, sample the server's CPU and memory from /proc
 * (proc-stats.ts), print a table and the targets, and write the raw results as JSON.
 *
 * Add a row by adding an entry to ROWS below. A row names its server processes
 * (usually one; several for a cluster, with helpers such as a Redis server marked
 * `target: false, measured: false`) and the protocol its clients speak. Every
 * measured process's CPU and RSS are summed with its descendants', so rows with an
 * agent and workers are measured whole.
 *
 * Flags (each also an environment variable):
 *   --quick                 1 s warm-up, 3 s measured (BENCH_QUICK=1)
 *   --warmup-ms N           warm-up before the measured window, default 5000 (BENCH_WARMUP_MS)
 *   --measure-ms N          measured window, default 10000 (BENCH_MEASURE_MS)
 *   --sizes 500,5000        subscriber counts (BENCH_SIZES)
 *   --rows a,b              only rows whose name contains one of these, or is it with a
 *                           leading `=` (`--rows "=zenconn json"`) (BENCH_ROWS)
 *   --window N              broadcasts awaiting their ack, default 16 (BENCH_WINDOW)
 *   --max-lag N             publisher lead over the slowest subscriber, default 32 (BENCH_MAX_LAG)
 *   --client-procs N        client processes, default 2 (BENCH_CLIENT_PROCS)
 *   --rate N                offered messages per second, default 0 = as fast as the window
 *                           and max lag allow (BENCH_RATE); below saturation, rows compare
 *                           by CPU per delivery for the same work
 *   --out FILE              results JSON, default bench/results/latest.json (BENCH_OUT)
 *   --list                  print the rows and exit
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Protocol } from './client-protocols.js';
import { newSecret, signToken } from './jwt.js';
import { runLoad, type LoadResult } from './load.js';
import { cpuMicros, machineBusyMicros, rssBytes } from './proc-stats.js';
import { ServerProcess, type ServerSpec } from './server-process.js';
import { zenconnSpec, type ZenconnContext } from './zenconn-server.js';
import { measureSizeRatio } from './size-corpus.js';
import { loadUws } from './uws-load.js';

/** The repository root (run.js is at dist/bench/run.js). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST_BENCH = dirname(fileURLToPath(import.meta.url));

/** What a row's `servers` function gets: fresh for every row × size (tmpdir is removed after). */
export type RowContext = ZenconnContext;

/** One line of the table: a server setup and the protocol its clients speak. */
export interface Row {
  name: string;
  /**
   * zenconn rows are checked against the targets; the first `socketio`, `ws` and `uws`
   * row are the references they are compared with; `other` rows are shown, not compared.
   */
  kind: 'zenconn' | 'socketio' | 'ws' | 'uws' | 'other' | 'variant';
  protocol: Protocol;
  /**
   * A `variant` row (a zenconn deployment: agent, audit backend, nodes) is checked for
   * lost messages and against another row of the same run: its deliveries/s ÷ that
   * row's, at each size, must be at least `minRatio`.
   */
  compare?: { with: string; minRatio?: number };
  /** The processes to start, in order; each must print its ready line before the next starts. */
  servers(ctx: RowContext): ServerSpec[];
  /** The publisher's token (zenconn: a token with the `publish` grant). */
  publisherToken?(ctx: RowContext): Promise<string>;
  /** Why the row cannot run on this machine (it is skipped with this note), or null. */
  unavailable?(): string | null;
}

/** A zenconn row's servers: one `zenconn <command> …the bench's flags… <flags>` (see zenconn-server.ts). */
function zenconn(command: string, flags: string[] = []): (ctx: RowContext) => ServerSpec[] {
  return (ctx) => [zenconnSpec(ctx, command, flags)];
}

/** A reference server from dist/bench, with `flags` after the bench's own. */
function reference(file: string, flags: string[] = []): (ctx: RowContext) => ServerSpec[] {
  return (ctx) => [
    {
      command: process.execPath,
      cwd: ctx.root,
      args: [join(DIST_BENCH, file), '--port', '0', '--host', '127.0.0.1', ...flags]
    }
  ];
}

const zenconnPublisher = (ctx: RowContext): Promise<string> => signToken(ctx.secret, 'publisher', ['publish']);

/** The --metrics-port of the metrics row (a spare port, as the Redis row's). */
const BENCH_METRICS_PORT = 9469;

/** The PostgreSQL of the audit-on-PostgreSQL row (BENCH_POSTGRES_URL). */
const BENCH_POSTGRES = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The rows, run in this order. Add yours here. */
export const ROWS: Row[] = [
  // The messaging core (issue targets: CPU vs Socket.IO and the bare loop, RSS): the audit
  // trail off, so these rows measure fan-out alone; the audit's cost has rows of its own.
  { name: 'zenconn json', kind: 'zenconn', protocol: 'json', servers: zenconn('serve', ['--no-audit']), publisherToken: zenconnPublisher },
  { name: 'zenconn binary', kind: 'zenconn', protocol: 'binary', servers: zenconn('serve', ['--no-audit']), publisherToken: zenconnPublisher },
  // zenconn as it ships: audit trail on, `ack` durability; at least 85 % of audit off.
  {
    name: 'zenconn json, audit sqlite',
    kind: 'variant',
    protocol: 'json',
    servers: zenconn('serve'),
    publisherToken: zenconnPublisher,
    compare: { with: 'zenconn json', minRatio: 0.85 }
  },
  // The same with `async` durability: the cost of writing the rows without waiting for them.
  {
    name: 'zenconn json, audit sqlite (async)',
    kind: 'variant',
    protocol: 'json',
    servers: zenconn('serve', ['--audit-durability', 'async']),
    publisherToken: zenconnPublisher,
    compare: { with: 'zenconn json' }
  },
  {
    name: 'zenconn json, audit postgres',
    kind: 'variant',
    protocol: 'json',
    servers: zenconn('serve', ['--database', `${BENCH_POSTGRES}?options=-c%20search_path%3Dzenconn_bench`]),
    publisherToken: zenconnPublisher,
    compare: { with: 'zenconn json', minRatio: 0.85 }
  },
  // PostgreSQL with acknowledgements after its commit instead of the journal append (not the default).
  {
    name: 'zenconn json, audit postgres (ack from database)',
    kind: 'variant',
    protocol: 'json',
    servers: zenconn('serve', ['--database', `${BENCH_POSTGRES}?options=-c%20search_path%3Dzenconn_bench`, '--audit-ack-from', 'database']),
    publisherToken: zenconnPublisher,
    compare: { with: 'zenconn json' }
  },
  // Metrics scraped every second (Prometheus's default is every 15 s) on --metrics-port: at
  // most 2 % fewer deliveries/s than the same server unscraped (issue #14).
  {
    name: 'zenconn json, metrics scraped',
    kind: 'variant',
    protocol: 'json',
    publisherToken: zenconnPublisher,
    compare: { with: 'zenconn json', minRatio: 0.98 },
    servers: (ctx) => [
      zenconnSpec(ctx, 'serve', ['--no-audit', '--metrics-port', String(BENCH_METRICS_PORT)]),
      { command: process.execPath, cwd: ctx.root, args: [join(DIST_BENCH, 'metrics-scraper.js'), String(BENCH_METRICS_PORT), '1000'], ready: /scraping/, target: false, measured: false }
    ]
  },
  // The agent with two workers, on the same load and settings: not below the single process.
  {
    name: 'zenconn agent 2 workers',
    kind: 'variant',
    protocol: 'json',
    servers: zenconn('agent', ['--workers', '2', '--no-audit']),
    publisherToken: zenconnPublisher,
    compare: { with: 'zenconn json', minRatio: 1 }
  },
  // One worker: the worker path's own cost (handoff, IPC registry), without a second fan-out process.
  {
    name: 'zenconn agent 1 worker',
    kind: 'variant',
    protocol: 'json',
    servers: zenconn('agent', ['--workers', '1', '--no-audit']),
    publisherToken: zenconnPublisher,
    compare: { with: 'zenconn json' }
  },
  // Two nodes on one Redis (a Redis of the bench's own on a spare port); subscribers are
  // spread over both nodes, the publisher talks to the first: half the deliveries cross.
  {
    name: 'zenconn 2 nodes redis',
    kind: 'variant',
    protocol: 'json',
    publisherToken: zenconnPublisher,
    servers: (ctx) => [
      { command: 'redis-server', args: ['--port', '6391', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], ready: /Ready to accept/, target: false, measured: false },
      zenconnSpec(ctx, 'serve', ['--bus', 'redis://127.0.0.1:6391/0', '--no-audit']),
      zenconnSpec(ctx, 'serve', ['--bus', 'redis://127.0.0.1:6391/0', '--no-audit'])
    ]
  },
  { name: 'socket.io 4', kind: 'socketio', protocol: 'socketio', servers: reference('socketio-server.js') },
  // The same server driven by the official socket.io-client (more client CPU, same server):
  // { name: 'socket.io 4 (official client)', kind: 'socketio', protocol: 'socketio-official',
  //   servers: reference('socketio-server.js') },
  { name: 'bare ws loop', kind: 'ws', protocol: 'json', servers: reference('ws-server.js') },
  { name: 'bare ws, frame once', kind: 'other', protocol: 'json', servers: reference('ws-server.js', ['--frame-once']) },
  // The limit (#15 §8): the same frames with the sockets and the fan-out in C++ (uWS pub/sub).
  // Its binaries are for Node 20 and older: elsewhere the row is skipped with a note.
  { name: 'uWebSockets.js pub/sub', kind: 'uws', protocol: 'json', servers: reference('uws-server.js'), unavailable: uwsUnavailable }
];

/** Why uWebSockets.js cannot run here (uws-load.ts), or null. */
function uwsUnavailable(): string | null {
  const loaded = loadUws();
  return 'reason' in loaded ? loaded.reason : null;
}

/** Targets, checked for every zenconn row. */
const TARGETS = {
  /** zenconn CPU per delivery ÷ Socket.IO's, at most. */
  cpuVsSocketIo: 1 / 3,
  /** zenconn CPU per delivery ÷ the bare ws loop's, at most. */
  cpuVsWs: 1.2,
  /** zenconn CPU per delivery ÷ uWebSockets.js pub/sub's, at most (#15 §8). */
  cpuVsUws: 1.3,
  /** RSS per idle subscribed connection at this size, at most (KiB). */
  rssPerConnKiB: 12,
  rssAtSize: 5000
};

/** How the checks name each reference row. */
const REFERENCE_LABEL = { socketio: 'Socket.IO', ws: 'bare ws loop', uws: 'uWebSockets.js' } as const;

/** Other processes' CPU during a measured window above which the row gets a warning. */
const OTHER_LOAD_WARN_CORES = 0.1;

interface Settings {
  warmupMs: number;
  measureMs: number;
  sizes: number[];
  rows: string[];
  window: number;
  maxLag: number;
  clientProcesses: number;
  rate: number;
  out: string;
  list: boolean;
}

/** What the bench measured on the server side for one row × size. */
interface ServerFigures {
  pids: number[];
  /** Server CPU (user + system) over the measured window and drain, µs. */
  cpuMicros: number;
  cpuMicrosPerDelivery: number;
  /** Server CPU ÷ wall time over the same span (1 = one core busy). */
  cpuCores: number;
  rssBeforeBytes: number;
  rssIdleBytes: number;
  rssPerConnBytes: number;
  rssAfterBytes: number;
  /**
   * CPU used over the same span by processes that are not the bench's (not this process,
   * its client processes or its servers), in cores. Above ~0.1 the figures are suspect.
   */
  otherCores: number;
}

interface Outcome {
  row: string;
  kind: Row['kind'];
  protocol: Protocol;
  subscribers: number;
  ok: boolean;
  error?: string;
  load?: LoadResult;
  server?: ServerFigures;
}

interface Check {
  row: string;
  subscribers: number;
  what: string;
  value: number | null;
  target: string;
  met: boolean | null;
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      'warmup-ms': { type: 'string' },
      'measure-ms': { type: 'string' },
      sizes: { type: 'string' },
      rows: { type: 'string' },
      window: { type: 'string' },
      'max-lag': { type: 'string' },
      'client-procs': { type: 'string' },
      rate: { type: 'string' },
      out: { type: 'string' },
      list: { type: 'boolean', default: false }
    }
  });
  const env = process.env;
  const quick = values.quick || env.BENCH_QUICK === '1';
  const int = (flag: string | undefined, envValue: string | undefined, fallback: number, name: string): number => {
    const raw = flag ?? envValue;
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
    return n;
  };
  const sizes = (values.sizes ?? env.BENCH_SIZES ?? '500,5000').split(',').map((s) => Number(s.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--sizes must be positive integers`);
  return {
    warmupMs: int(values['warmup-ms'], env.BENCH_WARMUP_MS, quick ? 1000 : 5000, 'warmup-ms'),
    measureMs: int(values['measure-ms'], env.BENCH_MEASURE_MS, quick ? 3000 : 10_000, 'measure-ms'),
    sizes,
    rows: (values.rows ?? env.BENCH_ROWS ?? '').split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== ''),
    window: int(values.window, env.BENCH_WINDOW, 16, 'window') || 1,
    maxLag: int(values['max-lag'], env.BENCH_MAX_LAG, 32, 'max-lag') || 1,
    clientProcesses: int(values['client-procs'], env.BENCH_CLIENT_PROCS, 2, 'client-procs') || 1,
    rate: int(values.rate, env.BENCH_RATE, 0, 'rate'),
    out: resolve(values.out ?? env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'latest.json')),
    list: values.list
  };
}

/** Servers started and not yet stopped, so an interrupt does not leave them behind. */
const live = new Set<ServerProcess>();

async function runRow(row: Row, subscribers: number, s: Settings): Promise<Outcome> {
  const base = { row: row.name, kind: row.kind, protocol: row.protocol, subscribers };
  const dir = mkdtempSync(join(tmpdir(), 'zenconn-bench-'));
  const ctx: RowContext = { tmpdir: dir, secret: newSecret(), root: ROOT };
  const servers: ServerProcess[] = [];
  try {
    for (const spec of row.servers(ctx)) {
      const server = await ServerProcess.start(spec);
      servers.push(server);
      live.add(server);
    }
    const pids = servers.filter((p) => p.measured).map((p) => p.pid);
    const targets = servers.filter((p) => p.isTarget).map((p) => p.address);
    if (targets.length === 0) throw new Error('the row has no target server');
    const token = await row.publisherToken?.(ctx);
    let rssBeforeBytes = 0;
    let rssIdleBytes = 0;
    let cpuStart = 0;
    let cpuEnd = 0;
    let wallStart = 0;
    let wallEnd = 0;
    let othersStart = 0;
    let othersEnd = 0;
    // Everything the bench runs descends from this process: servers and client processes.
    const others = (): number => machineBusyMicros() - cpuMicros([process.pid]);
    const load = await runLoad({
      targets,
      protocol: row.protocol,
      subscribers,
      clientProcesses: s.clientProcesses,
      window: s.window,
      maxLag: s.maxLag,
      rate: s.rate,
      warmupMs: s.warmupMs,
      measureMs: s.measureMs,
      ...(token === undefined ? {} : { publisherToken: token }),
      log: (line) => console.log(line),
      hooks: {
        beforeSubscribers: async () => {
          await sleep(500);
          rssBeforeBytes = rssBytes(pids);
        },
        subscribersIdle: () => {
          rssIdleBytes = rssBytes(pids);
        },
        measureStart: () => {
          wallStart = performance.now();
          cpuStart = cpuMicros(pids);
          othersStart = others();
        },
        measureEnd: () => {
          cpuEnd = cpuMicros(pids);
          othersEnd = others();
          wallEnd = performance.now();
        }
      }
    });
    const dead = servers.find((p) => !p.alive);
    if (dead !== undefined) throw new Error(`server ${dead.pid} died during the run:\n${dead.output.split('\n').slice(-8).join('\n')}`);
    const cpu = cpuEnd - cpuStart;
    const server: ServerFigures = {
      pids,
      cpuMicros: cpu,
      cpuMicrosPerDelivery: load.delivered > 0 ? cpu / load.delivered : Number.NaN,
      cpuCores: cpu / 1000 / (wallEnd - wallStart),
      rssBeforeBytes,
      rssIdleBytes,
      rssPerConnBytes: (rssIdleBytes - rssBeforeBytes) / subscribers,
      rssAfterBytes: rssBytes(pids),
      otherCores: (othersEnd - othersStart) / 1000 / (wallEnd - wallStart)
    };
    if (server.otherCores > OTHER_LOAD_WARN_CORES) {
      load.notes.push(`other processes used ${server.otherCores.toFixed(2)} cores during the measured window: figures are suspect`);
    }
    return { ...base, ok: true, load, server };
  } catch (err) {
    return { ...base, ok: false, error: (err as Error).message };
  } finally {
    for (const server of servers) {
      await server.stop();
      live.delete(server);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function checks(outcomes: Outcome[], sizes: number[]): Check[] {
  const out: Check[] = [];
  const find = (kind: Row['kind'], n: number) => outcomes.find((o) => o.kind === kind && o.subscribers === n && o.ok);
  // A row's `compare` target: its deliveries/s ÷ another row's, same size.
  const compare = (o: Outcome): void => {
    const cmp = ROWS.find((r) => r.name === o.row)?.compare;
    if (!cmp) return;
    const ref = outcomes.find((x) => x.row === cmp.with && x.subscribers === o.subscribers && x.ok);
    const value = o.ok && ref ? o.load!.deliveriesPerSec / ref.load!.deliveriesPerSec : null;
    // Without minRatio the ratio is shown for information.
    const min = cmp.minRatio;
    const target = min === undefined ? 'none, for information' : `≥ ${min}`;
    out.push({ row: o.row, subscribers: o.subscribers, what: `deliveries/s ÷ ${cmp.with}`, value, target, met: value === null || min === undefined ? null : value >= min });
  };
  for (const o of outcomes) {
    if (o.kind === 'variant') {
      if (o.ok) out.push({ row: o.row, subscribers: o.subscribers, what: 'lost messages', value: o.load!.lost, target: '= 0', met: o.load!.lost === 0 });
      compare(o);
      continue;
    }
    if (o.kind !== 'zenconn') continue;
    compare(o);
    const mine = o.ok ? o.server!.cpuMicrosPerDelivery : null;
    for (const [kind, target, label] of [
      ['socketio', TARGETS.cpuVsSocketIo, '≤ 0.33'],
      ['ws', TARGETS.cpuVsWs, `≤ ${TARGETS.cpuVsWs}`],
      ['uws', TARGETS.cpuVsUws, `≤ ${TARGETS.cpuVsUws}`]
    ] as const) {
      const ref = find(kind, o.subscribers);
      // uWS is skipped where it does not load: no check rather than an n/a line.
      if (kind === 'uws' && ref === undefined) continue;
      const value = mine !== null && ref !== undefined ? mine / ref.server!.cpuMicrosPerDelivery : null;
      out.push({
        row: o.row,
        subscribers: o.subscribers,
        what: `CPU/delivery ÷ ${REFERENCE_LABEL[kind]}`,
        value,
        target: label,
        met: value === null ? null : value <= target
      });
    }
    // Rows of kind `other` (e.g. the frame-once floor) are compared for information only.
    for (const other of outcomes) {
      if (other.kind !== 'other' || other.subscribers !== o.subscribers || !other.ok) continue;
      out.push({
        row: o.row,
        subscribers: o.subscribers,
        what: `CPU/delivery ÷ ${other.row}`,
        value: mine === null ? null : mine / other.server!.cpuMicrosPerDelivery,
        target: 'none, for information',
        met: null
      });
    }
    if (o.subscribers === TARGETS.rssAtSize) {
      const kib = o.ok ? o.server!.rssPerConnBytes / 1024 : null;
      out.push({
        row: o.row,
        subscribers: o.subscribers,
        what: 'RSS per idle subscribed connection (KiB)',
        value: kib,
        target: `≤ ${TARGETS.rssPerConnKiB}`,
        met: kib === null ? null : kib <= TARGETS.rssPerConnKiB
      });
    }
    if (o.ok) {
      out.push({
        row: o.row,
        subscribers: o.subscribers,
        what: 'lost messages',
        value: o.load!.lost,
        target: '= 0',
        met: o.load!.lost === 0
      });
    }
  }
  if (!sizes.includes(TARGETS.rssAtSize)) {
    out.push({ row: '-', subscribers: TARGETS.rssAtSize, what: 'RSS per connection not checked', value: null, target: `run size ${TARGETS.rssAtSize}`, met: null });
  }
  return out;
}

function fmt(n: number | null | undefined, digits: number): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

function thousands(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function printTable(outcomes: Outcome[]): void {
  const header = ['server', 'subs', 'msgs/s', 'deliveries/s', 'CPU µs/deliv', 'srv cores', 'p50 ms', 'p99 ms', 'RSS/conn KiB', 'lost'];
  const rows: string[][] = [];
  const errors: string[] = [];
  for (const o of outcomes) {
    if (!o.ok) {
      rows.push([o.row, String(o.subscribers), 'FAILED', `(see note ${errors.length + 1})`, '', '', '', '', '', '']);
      errors.push(`${errors.length + 1}. ${o.row} @ ${o.subscribers}: ${o.error}`);
      continue;
    }
    const l = o.load!;
    const sv = o.server!;
    rows.push([
      o.row,
      String(o.subscribers),
      thousands(l.messagesPerSec),
      thousands(l.deliveriesPerSec),
      fmt(sv.cpuMicrosPerDelivery, 3),
      fmt(sv.cpuCores, 2),
      fmt(l.latencyMs.p50, 2),
      fmt(l.latencyMs.p99, 2),
      fmt(sv.rssPerConnBytes / 1024, 2),
      String(l.lost)
    ]);
    for (const note of l.notes) errors.push(`- ${o.row} @ ${o.subscribers}: ${note}`);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log('');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  if (errors.length > 0) {
    console.log('');
    for (const e of errors) console.log(e);
  }
}

function printChecks(list: Check[]): void {
  if (list.length === 0) return;
  console.log('\nTargets');
  for (const c of list) {
    const verdict = c.met === null ? (c.target.startsWith('none') ? 'info  ' : 'n/a   ') : c.met ? 'met   ' : 'MISSED';
    const value = c.value !== null && Number.isInteger(c.value) ? String(c.value) : fmt(c.value, 3);
    console.log(`  ${verdict} ${c.row} @ ${c.subscribers}: ${c.what} = ${value} (target ${c.target})`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  const s = settings();
  // `--rows a,b`: rows whose name contains a or b; `=name`: that row alone.
  const pick = (r: Row, f: string): boolean => (f.startsWith('=') ? r.name.toLowerCase() === f.slice(1) : r.name.toLowerCase().includes(f));
  const picked = s.rows.length === 0 ? ROWS : ROWS.filter((r) => s.rows.some((f) => pick(r, f)));
  if (s.list) {
    for (const r of ROWS) {
      const why = r.unavailable?.() ?? null;
      console.log(`${r.name} (${r.kind}, ${r.protocol})${why === null ? '' : `: skipped here, ${why}`}`);
    }
    return;
  }
  if (picked.length === 0) throw new Error(`no row matches --rows ${s.rows.join(',')}`);
  // A row that cannot run on this machine (uWS on a Node it has no binary for) is skipped with a note.
  const skipped: Array<{ row: string; reason: string }> = [];
  const rows = picked.filter((r) => {
    const reason = r.unavailable?.() ?? null;
    if (reason !== null) skipped.push({ row: r.name, reason });
    return reason === null;
  });
  for (const k of skipped) console.log(`${k.row}: skipped, ${k.reason}`);
  console.log(
    `zenconn bench: ${rows.length} rows × sizes ${s.sizes.join(', ')}; warm-up ${s.warmupMs} ms, measured ${s.measureMs} ms; ` +
      `window ${s.window}, max lag ${s.maxLag}, ${s.clientProcesses} client processes` +
      (s.rate > 0 ? `, ${s.rate} messages/s offered` : '')
  );
  const outcomes: Outcome[] = [];
  for (const row of rows) {
    for (const n of s.sizes) {
      console.log(`${row.name} @ ${n} subscribers`);
      const outcome = await runRow(row, n, s);
      if (!outcome.ok) console.log(`  failed: ${outcome.error!.split('\n')[0]}`);
      else {
        const l = outcome.load!;
        console.log(
          `  ${thousands(l.deliveriesPerSec)} deliveries/s, ${fmt(outcome.server!.cpuMicrosPerDelivery, 3)} µs CPU/delivery, ` +
            `p99 ${fmt(l.latencyMs.p99, 2)} ms, lost ${l.lost}`
        );
      }
      outcomes.push(outcome);
    }
  }
  printTable(outcomes);
  for (const k of skipped) console.log(`\nSkipped: ${k.row}: ${k.reason}`);
  const list = checks(outcomes, s.sizes);
  printChecks(list);
  const corpus = measureSizeRatio();
  console.log(`\nBinary/JSON size ratio: ${corpus.ratio.toFixed(3)} (${thousands(corpus.binBytes)} / ${thousands(corpus.jsonBytes)} bytes over the size corpus)`);

  const cpuModel = cpus()[0]?.model ?? 'unknown';
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel, kernel: release(), node: process.version },
    settings: { ...s, out: undefined },
    outcomes,
    skipped,
    targets: list,
    sizeCorpus: corpus
  };
  mkdirSync(dirname(s.out), { recursive: true });
  writeFileSync(s.out, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nRaw results: ${s.out}`);
}

async function stopAll(): Promise<void> {
  await Promise.all([...live].map((server) => server.stop(2000)));
}

process.on('SIGINT', () => {
  void stopAll().then(() => process.exit(130));
});
process.on('SIGTERM', () => {
  void stopAll().then(() => process.exit(143));
});

main().catch(async (err: Error) => {
  console.error(`bench: ${err.message}`);
  await stopAll();
  process.exit(1);
});
