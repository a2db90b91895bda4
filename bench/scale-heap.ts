/**
 * Where a session's memory goes (#15): a heap snapshot by constructor of one zenconn
 * worker before and after it took `--sessions` idle subscribed sessions (default 10,000).
 *
 * Starts `zenconn agent --workers 1` with `--heapsnapshot-signal=SIGUSR2` (workers
 * inherit the agent's node flags), signals the worker before the clients connect and
 * again once they are all subscribed, and prints, per constructor (V8 node type + name),
 * the objects and bytes the sessions added, per session. Also the worker's RSS and
 * V8 heap figures per session, from /proc and the snapshot totals.
 *
 * Usage: npm run build && node dist/bench/scale-heap.js [--sessions 10000] [--top 30] [--keep]
 * (`--keep` leaves both snapshots in their temp folder, for Chrome DevTools' Memory tab)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { newSecret } from './jwt.js';
import { memoryStatus, processTree } from './proc-stats.js';
import { ServerProcess } from './server-process.js';
import type { FromScaleClient, ToScaleClient } from './scale-client.js';
import { zenconnSpec } from './zenconn-server.js';

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '10000' }, top: { type: 'string', default: '30' }, keep: { type: 'boolean', default: false } } });
const sessions = Number(values.sessions);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLIENT_PATH = fileURLToPath(new URL('./scale-client.js', import.meta.url));

/** Constructor key → objects and self bytes. */
type Census = Map<string, { count: number; bytes: number }>;

function census(path: string): { byKey: Census; total: number } {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const TYPE = fields.indexOf('type');
  const NAME = fields.indexOf('name');
  const SIZE = fields.indexOf('self_size');
  const byKey: Census = new Map();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + TYPE]!]!;
    const size = snap.nodes[i + SIZE]!;
    total += size;
    // Strings, code and numbers by type; objects, closures and arrays by constructor name.
    const name = type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'array' || type === 'object shape'
      ? `${type}: ${snap.strings[snap.nodes[i + NAME]!]!.slice(0, 60)}`
      : type;
    const entry = byKey.get(name);
    if (entry === undefined) byKey.set(name, { count: 1, bytes: size });
    else {
      entry.count++;
      entry.bytes += size;
    }
  }
  return { byKey, total };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Signal `pid` and wait for its new snapshot file in `dir` to be complete. */
async function snapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')));
  process.kill(pid, 'SIGUSR2');
  for (;;) {
    await sleep(500);
    const fresh = readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (fresh.length === 0) continue;
    const path = join(dir, fresh[0]!);
    const size = statSync(path).size;
    await sleep(1500);
    if (statSync(path).size === size && size > 0) return path;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'zenconn-scale-heap-'));
const spec = zenconnSpec({ tmpdir: dir, secret: newSecret(), root: ROOT }, 'agent', ['--workers', '1', '--no-audit', '--host', '0.0.0.0', '--max-connections', '0', '--max-connections-per-ip', '0', '--handshake-rate-per-ip', '0']);
spec.args.unshift('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`);
const server = await ServerProcess.start(spec);
const clients: ChildProcess[] = [];
try {
  await sleep(1500);
  const worker = processTree([server.pid]).find((pid) => pid !== server.pid)!;
  const rssBefore = memoryStatus([worker]).rssBytes;
  const first = await snapshot(worker, dir);
  const procs = Math.max(2, Math.ceil(sessions / 15_000));
  await Promise.all(
    Array.from({ length: procs }, (_, i) => {
      const child = fork(CLIENT_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      clients.push(child);
      return new Promise<void>((resolve, reject) => {
        child.on('message', (m: FromScaleClient) => {
          if (m.ev !== 'connected') return;
          if (m.failed > 0) reject(new Error(`${m.failed} sessions failed: ${m.firstError}`));
          else resolve();
        });
        const count = Math.floor(sessions / procs) + (i < sessions % procs ? 1 : 0);
        child.send({ cmd: 'connect', target: { host: `127.0.0.${i + 1}`, port: server.address.port }, channel: 'bench', count, concurrency: 64 } satisfies ToScaleClient);
      });
    })
  );
  await sleep(3000);
  const rssAfter = memoryStatus([worker]).rssBytes;
  const second = await snapshot(worker, dir);
  const a = census(first);
  const b = census(second);
  const rows = [...b.byKey].map(([key, v]) => {
    const base = a.byKey.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: v.count - base.count, bytes: v.bytes - base.bytes };
  });
  rows.sort((x, y) => y.bytes - x.bytes);
  process.stdout.write(`one worker, ${sessions} idle subscribed sessions\n`);
  process.stdout.write(`RSS ${((rssAfter - rssBefore) / sessions / 1024).toFixed(2)} KiB per session; V8 heap (snapshot self sizes) ${((b.total - a.total) / sessions / 1024).toFixed(2)} KiB per session\n\n`);
  process.stdout.write('| constructor (V8 type: name) | objects per session | bytes per session |\n| --- | ---: | ---: |\n');
  for (const r of rows.slice(0, Number(values.top))) {
    process.stdout.write(`| ${r.key.replace(/\|/g, '\\|')} | ${(r.count / sessions).toFixed(2)} | ${(r.bytes / sessions).toFixed(0)} |\n`);
  }
} finally {
  for (const c of clients) c.kill('SIGKILL');
  await server.stop();
  if (values.keep) process.stdout.write(`snapshots kept in ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
