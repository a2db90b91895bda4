/**
 * The scale bench (#15): how many idle subscribed sessions one box holds, how fast they
 * connect, what each costs, how fast one broadcast reaches all of them, what they cost
 * idle, and whether everything is given back when they close.
 *
 * Rows: `agent` (zenconn agent, `--workers auto` unless `--workers N`), `agent-shared`
 * (the same with `--accept shared`: the workers accept on the agent's port), `serve` (one
 * zenconn process, at most `--serve-sessions`, the largest size one process may hold
 * under a 20,000 open-file limit), `ws` (the bare `ws` loop, bench/ws-server.ts, at the
 * same size as `serve`). Every server listens on 0.0.0.0; client process i dials
 * 127.0.0.(i+1), so each has its own range of ~28,000 ephemeral ports.
 *
 * Per row it prints: handshakes/s (sessions / time until every client process had all
 * its sessions subscribed), RSS per session over the server's whole process tree
 * (proc-stats.ts: idle RSS minus RSS before the first client, over sessions), the spread
 * of a broadcast to everyone (from the POST /api/broadcast — for `ws`, the publisher's
 * frame — to the last recipient, on the shared clock), idle CPU over `--idle-ms` (with
 * pings every `--ping-interval-ms`, starting `--settle-ms` after the last subscribe: the
 * time for what a burst leaves behind, session rows and V8's post-burst GC, to pass),
 * and after every client closed: open session rows
 * in the database (zenconn) and RSS vs where it started.
 *
 * Usage: npm run bench:scale -- --sessions 100000 [--rows agent,serve,ws]
 *   [--client-procs 4] [--serve-sessions 19000] [--workers auto|N] [--concurrency 128]
 *   [--subscribe on|off] [--settle-ms 3000] [--idle-ms 30000] [--ping-interval-ms 25000] [--broadcasts 3]
 *   [--rates 1,2,5,10] [--rate-seconds 10] [--rounds 1|2|N] [--gc on|off] [--json FILE]
 *
 * `--rates`: after the single broadcasts, broadcasts to everyone at each rate per second
 * for `--rate-seconds`, on schedule, stopping at the first rate the server does not keep
 * up with (scale-rate.ts says how that is judged).
 *
 * `--subscribe off`: the sessions do not subscribe (the cost of a session alone; the
 * broadcasts then reach nobody, so use `--broadcasts 0`).
 *
 * `--rounds 2` (or more) connects every client again once the previous round closed (a
 * reconnect storm: all of them at once) and closes them again: session rows and RSS after each.
 *
 * `--gc on` (the default) starts every server process with `--inspect=0` and forces a
 * full GC in each over the inspector (scale-gc.ts) before the start figure, after the
 * idle window and after each close, so RSS is compared after GC, not at V8's whim. RSS
 * is reported per process too (root: the agent or the one server; w1, w2…: workers).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { connectPublisher } from './client-protocols.js';
import { newSecret, signToken } from './jwt.js';
import { makePayload, type Payload } from './payload.js';
import { cpuByProcess, cpuMicros, memoryStatus, type ProcessCpu } from './proc-stats.js';
import { collectGarbage, formatByProcess, GC_NODE_ARGS, inspectorUrls, rssByProcess, type GcAnswer, type ProcessRss } from './scale-gc.js';
import { rateLine, sustainedBroadcasts, type RateFigures } from './scale-rate.js';
import { ServerProcess, type ServerSpec } from './server-process.js';
import { forkClient, next, send, sleep, waitUntil, type Client } from './scale-fleet.js';
import { zenconnSpec } from './zenconn-server.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100000' },
    rows: { type: 'string', default: 'agent,serve,ws' },
    'client-procs': { type: 'string' },
    'serve-sessions': { type: 'string', default: '19000' },
    workers: { type: 'string', default: 'auto' },
    concurrency: { type: 'string', default: '128' },
    'idle-ms': { type: 'string', default: '30000' },
    'settle-ms': { type: 'string', default: '3000' },
    subscribe: { type: 'string', default: 'on' },
    'ping-interval-ms': { type: 'string', default: '25000' },
    broadcasts: { type: 'string', default: '3' },
    rates: { type: 'string', default: '' },
    'rate-seconds': { type: 'string', default: '10' },
    rounds: { type: 'string', default: '1' },
    gc: { type: 'string', default: 'on' },
    'hold-ms': { type: 'string', default: '0' },
    json: { type: 'string' }
  }
});

/** Sessions one client process opens at most (its own 20,000 open-file limit). */
const PER_CLIENT_PROCESS = 15_000;
const CHANNEL = 'bench';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WS_SERVER_PATH = fileURLToPath(new URL('./ws-server.js', import.meta.url));

/** What one row measured. */
export interface ScaleRow {
  row: string;
  sessions: number;
  clientProcesses: number;
  connectMs: number;
  handshakesPerSec: number;
  /** Server CPU (whole tree) during the connect burst, per session, µs. */
  cpuPerHandshakeMicros: number;
  /** The connect burst per server process (root first): CPU µs and context switches per session. */
  connectByProcess: Array<{ pid: number; cpuMicrosPerSession: number; switchesPerSession: number }>;
  rssStartBytes: number;
  rssIdleBytes: number;
  rssPerSessionBytes: number;
  idleCpuPercent: number;
  /** Idle CPU per server process (root first), % of a core. */
  idleCpuByProcessPercent: number[];
  idleMs: number;
  /** Time from the broadcast's send to its last recipient, ms, one per broadcast. */
  broadcastSpreadMs: number[];
  /** Sustained broadcasts (--rates), one entry per rate run, in order. */
  rates: RateFigures[];
  droppedByServer: number;
  /** Session rows still open once every client closed (zenconn rows; null for ws). */
  openRowsAfterClose: number | null;
  sessionRows: number | null;
  rssAfterCloseBytes: number;
  /** The second round of connects and closes (--rounds 2): its connect time and RSS after it closed. */
  round2: { connectMs: number; sessions: number; rssAfterCloseBytes: number } | null;
  /** RSS of the tree after a forced GC (--gc on; null with --gc off): at start, idle, after each round's close. */
  rssStartGcBytes: number | null;
  rssIdleGcBytes: number | null;
  /** Per process (root first): before the first client, idle, idle after GC. */
  byProcess: { start: ProcessRss[]; idle: ProcessRss[]; idleGc: ProcessRss[] | null };
  /** V8 heap per process after the GC at start and after the idle GC (--gc on). */
  heapStartGc: GcAnswer[] | null;
  heapIdleGc: GcAnswer[] | null;
  /** Every round (the first included): connect time, sessions, RSS 10 s after close, after close + GC, per process. */
  rounds: RoundFigures[];
  notes: string[];
}

/** One round of connect-all / close-all. */
export interface RoundFigures {
  connectMs: number;
  sessions: number;
  rssAfterCloseBytes: number;
  rssAfterGcBytes: number | null;
  byProcessAfterClose: ProcessRss[];
  byProcessAfterGc: ProcessRss[] | null;
  heapAfterGc: GcAnswer[] | null;
}

function openRows(dbPath: string): { open: number; total: number } {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const r = db.prepare('SELECT count(*) AS total, sum(CASE WHEN disconnected_at IS NULL THEN 1 ELSE 0 END) AS open FROM sessions').get() as { total: number; open: number | null };
    return { open: r.open ?? 0, total: r.total };
  } finally {
    db.close();
  }
}

async function runRow(row: string, sessions: number): Promise<ScaleRow> {
  const dir = mkdtempSync(join(tmpdir(), `zenconn-scale-${row}-`));
  const secret = newSecret();
  const ctx = { tmpdir: dir, secret, root: ROOT };
  const clientProcesses = Math.max(Number(values['client-procs'] ?? 4), Math.ceil(sessions / PER_CLIENT_PROCESS), 1);
  const limits = ['--max-connections-per-ip', '0', '--handshake-rate-per-ip', '0', '--ping-interval-ms', values['ping-interval-ms']!, '--idle-timeout-ms', String(Number(values['ping-interval-ms']) * 3), '--no-audit', '--host', '0.0.0.0'];
  let spec: ServerSpec;
  if (row === 'agent' || row === 'agent-shared') {
    const accept = row === 'agent' ? [] : ['--accept', 'shared'];
    spec = zenconnSpec(ctx, 'agent', [...limits, ...accept, '--workers', values.workers!, '--max-connections', String(sessions + 1000)]);
  }
  else if (row === 'serve') spec = zenconnSpec(ctx, 'serve', [...limits, '--max-connections', '0']);
  else if (row === 'ws') spec = { label: 'ws', command: process.execPath, args: [WS_SERVER_PATH, '--port', '0', '--host', '0.0.0.0', '--ping-interval-ms', values['ping-interval-ms']!] };
  else throw new Error(`unknown row ${row} (agent, agent-shared, serve, ws)`);
  spec.startTimeoutMs = 60_000;
  const withGc = values.gc !== 'off';
  if (withGc) spec.args = [...GC_NODE_ARGS, ...spec.args];
  const notes: string[] = [];
  const server = await ServerProcess.start(spec);
  const port = server.address.port;
  const clients: Client[] = [];
  const urls = new Set<string>();
  /** Full GC in every process of the tree (null with --gc off), then its RSS, total and per process. */
  const gcNow = async (): Promise<{ rss: number; byProcess: ProcessRss[]; heap: GcAnswer[] } | null> => {
    if (!withGc) return null;
    const heap = await collectGarbage(inspectorUrls(server.output, urls));
    await sleep(500);
    return { rss: memoryStatus([server.pid]).rssBytes, byProcess: rssByProcess(server.pid), heap };
  };
  try {
    await sleep(1500);
    const startGc = await gcNow();
    const start = memoryStatus([server.pid]);
    const startByProcess = rssByProcess(server.pid);
    const perProcess = Math.floor(sessions / clientProcesses);
    /** Forks the client processes and has them all connect; resolves once every one is done. */
    const connectRound = async (): Promise<{ ok: number; connectMs: number; cpuMicros: number; byProcess: ScaleRow['connectByProcess'] }> => {
      for (const c of clients.splice(0)) c.child.kill('SIGKILL');
      for (let i = 0; i < clientProcesses; i++) {
        const count = perProcess + (i < sessions % clientProcesses ? 1 : 0);
        const client = forkClient({ host: `127.0.0.${i + 1}`, port }, count);
        clients.push(client);
      }
      const cpuBefore = cpuMicros([server.pid]);
      const byProcessBefore = cpuByProcess([server.pid]);
      const started = performance.now();
      const connected = await Promise.all(
        clients.map((c) => {
          const done = next(c, 'connected', 600_000);
          send(c, { cmd: 'connect', target: c.target, channel: CHANNEL, subscribe: values.subscribe !== 'off', count: c.count, concurrency: Number(values.concurrency) });
          return done;
        })
      );
      const connectMs = performance.now() - started;
      const latencies = connected.flatMap((c) => c.latencies).sort((a, b) => a - b);
      const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
      process.stdout.write(`  ${row}: each session's connect → ${values.subscribe === 'off' ? 'accepted' : 'subscribed'}: median ${at(0.5).toFixed(0)} ms, p90 ${at(0.9).toFixed(0)}, p99 ${at(0.99).toFixed(0)}, max ${at(1).toFixed(0)} ms; ${latencies.filter((ms) => ms >= 1000).length} took 1 s or more\n`);
      const failed = connected.reduce((n, c) => n + c.failed, 0);
      if (failed > 0) notes.push(`${failed} sessions failed: ${connected.find((c) => c.firstError)?.firstError}`);
      const ok = connected.reduce((n, c) => n + c.ok, 0);
      return { ok, connectMs, cpuMicros: cpuMicros([server.pid]) - cpuBefore, byProcess: perSession(byProcessBefore, cpuByProcess([server.pid]), ok) };
    };
    /** Closes every session from the client side; then waits for the server's sockets and session rows. */
    const closeRound = async (): Promise<{ droppedByServer: number; rows: { open: number; total: number } | null; rssAfter: number; byProcess: ProcessRss[]; gc: Awaited<ReturnType<typeof gcNow>> }> => {
      const closed = await Promise.all(clients.map((c) => { const done = next(c, 'closed', 120_000); send(c, { cmd: 'close' }); return done; }));
      if (!(await waitUntil(() => memoryStatus([server.pid]).fds <= start.fds + 20, 60_000))) notes.push(`server fds ${memoryStatus([server.pid]).fds} vs ${start.fds} at start`);
      let rows: { open: number; total: number } | null = null;
      if (row !== 'ws') {
        const dbPath = join(dir, 'bench.db');
        await waitUntil(() => openRows(dbPath).open === 0, 60_000, 500);
        rows = openRows(dbPath);
      }
      // 10 s idle lets V8's memory reducer run; then (--gc on) a forced GC in every process.
      await sleep(10_000);
      const rssAfter = memoryStatus([server.pid]).rssBytes;
      const byProcess = rssByProcess(server.pid);
      const gc = await gcNow();
      // --hold-ms: time to look into the processes (gdb, smaps) before the next round.
      if (Number(values['hold-ms']) > 0) {
        process.stdout.write(`  ${row}: holding ${values['hold-ms']} ms after close (pids ${rssByProcess(server.pid).map((p) => p.pid).join(' ')})\n`);
        await sleep(Number(values['hold-ms']));
      }
      return { droppedByServer: closed.reduce((n, c) => n + c.droppedByServer, 0), rows, rssAfter, byProcess, gc };
    };
    const { ok, connectMs, cpuMicros: connectCpuMicros, byProcess: connectByProcess } = await connectRound();
    process.stdout.write(`  ${row}: ${ok} sessions in ${(connectMs / 1000).toFixed(1)} s\n`);
    await sleep(Number(values['settle-ms']));
    const idle = memoryStatus([server.pid]);
    const idleByProcess = rssByProcess(server.pid);

    const idleMs = Number(values['idle-ms']);
    const cpuBefore = cpuMicros([server.pid]);
    const idleBefore = cpuByProcess([server.pid]);
    const idleStarted = performance.now();
    await sleep(idleMs);
    const idleWallMicros = (performance.now() - idleStarted) * 1000;
    const idleCpuPercent = ((cpuMicros([server.pid]) - cpuBefore) / idleWallMicros) * 100;
    const idleByProcessPercent = cpuByProcess([server.pid]).map((a) => ((a.cpuMicros - (idleBefore.find((b) => b.pid === a.pid)?.cpuMicros ?? 0)) / idleWallMicros) * 100);
    const idleGc = await gcNow();

    // Broadcast to everyone: arm every client, send, wait for each client's last recipient.
    const spreads: number[] = [];
    const token = row === 'ws' ? undefined : await signToken(secret, 'publisher', ['publish']);
    const publisher =
      row === 'ws'
        ? await connectPublisher({ target: { host: '127.0.0.1', port }, protocol: 'json', channel: CHANNEL, onFailure: (m) => notes.push(m) })
        : undefined;
    /** One broadcast to the channel (the publisher's frame for `ws`, the HTTP API for zenconn); an error text or undefined. */
    const publish = async (payload: Payload): Promise<string | undefined> => {
      try {
        let count: number | undefined;
        if (publisher !== undefined) count = await new Promise<number>((resolve) => publisher.publish(payload, resolve));
        else {
          const res = await fetch(`http://127.0.0.1:${port}/api/broadcast`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ channel: CHANNEL, data: payload })
          });
          count = ((await res.json()) as { count?: number }).count;
          if (res.status !== 200) return `broadcast ${payload.s}: ${res.status}`;
        }
        return count === ok ? undefined : `broadcast ${payload.s}: count ${count} of ${ok}`;
      } catch (err) {
        return `broadcast ${payload.s}: ${(err as Error).message}`;
      }
    };
    for (let b = 0; b < Number(values.broadcasts); b++) {
      await Promise.all(clients.map((c) => { const armed = next(c, 'armed', 30_000); send(c, { cmd: 'arm', seq: b }); return armed; }));
      const delivered = Promise.all(clients.map((c) => next(c, 'delivered', 60_000)));
      const payload = makePayload(b, true);
      const failed = await publish(payload);
      if (failed !== undefined) notes.push(failed);
      try {
        const got = await delivered;
        spreads.push(Math.max(...got.map((g) => g.lastAt)) - payload.t);
      } catch (err) {
        notes.push(`broadcast ${b}: ${(err as Error).message}`);
      }
      await sleep(500);
    }
    // Sustained broadcasts, each rate in turn, until one falls behind (scale-rate.ts).
    const rates: RateFigures[] = [];
    let firstSeq = Number(values.broadcasts);
    for (const rate of (values.rates ?? '').split(',').filter((r) => r !== '').map(Number)) {
      const figures = await sustainedBroadcasts({ clients, sessions: ok, serverPid: server.pid, rate, seconds: Number(values['rate-seconds']), firstSeq, publish });
      firstSeq += figures.broadcasts;
      rates.push(figures);
      process.stdout.write(`  ${row}: ${rateLine(figures)}\n`);
      if (!figures.keptUp) break;
      await sleep(1000);
    }
    publisher?.close();

    // Close everything; then the server's sockets, the session rows and the memory.
    const first = await closeRound();
    const rounds: RoundFigures[] = [];
    const figures = (connect: { ok: number; connectMs: number }, closed: Awaited<ReturnType<typeof closeRound>>): RoundFigures => ({
      connectMs: connect.connectMs,
      sessions: connect.ok,
      rssAfterCloseBytes: closed.rssAfter,
      rssAfterGcBytes: closed.gc?.rss ?? null,
      byProcessAfterClose: closed.byProcess,
      byProcessAfterGc: closed.gc?.byProcess ?? null,
      heapAfterGc: closed.gc?.heap ?? null
    });
    rounds.push(figures({ ok, connectMs }, first));
    process.stdout.write(`  ${row}: round 1 closed: ${roundLine(rounds[0]!)}\n`);
    let rows = first.rows;
    for (let n = 2; n <= Number(values.rounds); n++) {
      // Every client again at once (a reconnect storm), then all closed again.
      const again = await connectRound();
      process.stdout.write(`  ${row}: round ${n}, ${again.ok} sessions in ${(again.connectMs / 1000).toFixed(1)} s\n`);
      const closedAgain = await closeRound();
      rows = closedAgain.rows;
      rounds.push(figures(again, closedAgain));
      process.stdout.write(`  ${row}: round ${n} closed: ${roundLine(rounds[n - 1]!)}\n`);
    }
    const second = rounds[1];
    const droppedByServer = first.droppedByServer;
    return {
      row,
      sessions: ok,
      clientProcesses,
      connectMs,
      handshakesPerSec: ok / (connectMs / 1000),
      cpuPerHandshakeMicros: connectCpuMicros / Math.max(1, ok),
      connectByProcess,
      rssStartBytes: start.rssBytes,
      rssIdleBytes: idle.rssBytes,
      rssPerSessionBytes: (idle.rssBytes - start.rssBytes) / Math.max(1, ok),
      idleCpuPercent,
      idleCpuByProcessPercent: idleByProcessPercent,
      idleMs,
      broadcastSpreadMs: spreads,
      rates,
      droppedByServer,
      openRowsAfterClose: rows === null ? null : rows.open,
      sessionRows: rows === null ? null : rows.total,
      rssAfterCloseBytes: first.rssAfter,
      round2: second === undefined ? null : { connectMs: second.connectMs, sessions: second.sessions, rssAfterCloseBytes: second.rssAfterCloseBytes },
      rssStartGcBytes: startGc?.rss ?? null,
      rssIdleGcBytes: idleGc?.rss ?? null,
      byProcess: { start: startByProcess, idle: idleByProcess, idleGc: idleGc?.byProcess ?? null },
      heapStartGc: startGc?.heap ?? null,
      heapIdleGc: idleGc?.heap ?? null,
      rounds,
      notes
    };
  } finally {
    for (const c of clients) c.child.kill('SIGKILL');
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const MiB = 1024 * 1024;

/** Each process's CPU and context switches between two readings, per session (root first, as read). */
function perSession(before: ProcessCpu[], after: ProcessCpu[], sessions: number): ScaleRow['connectByProcess'] {
  const n = Math.max(1, sessions);
  return after.map((a) => {
    const b = before.find((x) => x.pid === a.pid);
    return { pid: a.pid, cpuMicrosPerSession: (a.cpuMicros - (b?.cpuMicros ?? 0)) / n, switchesPerSession: (a.contextSwitches - (b?.contextSwitches ?? 0)) / n };
  });
}

/** `RSS 10 s after close 300 MiB (root 80 | w1 110 | w2 110); after GC 250 MiB (…), heap 12/30/31 MiB`. */
function roundLine(r: RoundFigures): string {
  const gc = r.rssAfterGcBytes === null || r.byProcessAfterGc === null
    ? ''
    : `; after GC ${(r.rssAfterGcBytes / MiB).toFixed(0)} MiB (${formatByProcess(r.byProcessAfterGc)}), V8 heap used ${(r.heapAfterGc ?? []).map((h) => (h.heapUsedBytes / MiB).toFixed(1)).join(' / ')} MiB`;
  return `RSS 10 s after close ${(r.rssAfterCloseBytes / MiB).toFixed(0)} MiB (${formatByProcess(r.byProcessAfterClose)})${gc}`;
}

const results: ScaleRow[] = [];
for (const row of values.rows!.split(',')) {
  const total = Number(values.sessions);
  const sessions = row.startsWith('agent') ? total : Math.min(total, Number(values['serve-sessions']));
  process.stdout.write(`${row}: ${sessions} sessions\n`);
  try {
    const r = await runRow(row, sessions);
    results.push(r);
    const spread = r.broadcastSpreadMs.map((ms) => ms.toFixed(0)).join(' / ');
    process.stdout.write(
      `  handshakes/s ${r.handshakesPerSec.toFixed(0)} (server CPU ${r.cpuPerHandshakeMicros.toFixed(0)} µs each) | RSS/session ${(r.rssPerSessionBytes / 1024).toFixed(1)} KiB (${(r.rssStartBytes / MiB).toFixed(0)} → ${(r.rssIdleBytes / MiB).toFixed(0)} MiB) | ` +
        `broadcast to all ${spread} ms | idle CPU ${r.idleCpuPercent.toFixed(1)} % of a core over ${(r.idleMs / 1000).toFixed(0)} s | ` +
        `after close: open rows ${r.openRowsAfterClose ?? 'n/a'} of ${r.sessionRows ?? 'n/a'}, RSS ${(r.rssAfterCloseBytes / MiB).toFixed(0)} MiB (${(((r.rssAfterCloseBytes - r.rssStartBytes) / r.rssStartBytes) * 100).toFixed(0)} % vs start)` +
        (r.round2 === null ? '' : ` | round 2: ${r.round2.sessions} in ${(r.round2.connectMs / 1000).toFixed(1)} s, RSS after close ${(r.round2.rssAfterCloseBytes / MiB).toFixed(0)} MiB`) +
        `\n  idle CPU per process (% of a core): ${r.idleCpuByProcessPercent.map((p) => p.toFixed(1)).join(' | ')}` +
        `\n  connect per process (CPU µs / context switches per session): ${r.connectByProcess.map((p) => `${p.cpuMicrosPerSession.toFixed(0)}/${p.switchesPerSession.toFixed(1)}`).join(' | ')}` +
        `\n  RSS per process (MiB): start ${formatByProcess(r.byProcess.start)}; idle ${formatByProcess(r.byProcess.idle)}` +
        (r.byProcess.idleGc === null || r.rssStartGcBytes === null || r.rssIdleGcBytes === null
          ? ''
          : `; idle after GC ${formatByProcess(r.byProcess.idleGc)} (${((r.rssIdleGcBytes - r.rssStartGcBytes) / r.sessions / 1024).toFixed(1)} KiB/session after GC; V8 heap used ${(r.heapStartGc ?? []).map((h) => (h.heapUsedBytes / MiB).toFixed(1)).join(' / ')} → ${(r.heapIdleGc ?? []).map((h) => (h.heapUsedBytes / MiB).toFixed(1)).join(' / ')} MiB)` +
            ` | RSS after GC: start ${(r.rssStartGcBytes / MiB).toFixed(0)} → idle ${(r.rssIdleGcBytes / MiB).toFixed(0)} → ` +
            r.rounds.map((x, i) => `after close ${i + 1} ${((x.rssAfterGcBytes ?? 0) / MiB).toFixed(0)}`).join(' → ') +
            ` MiB (${((((r.rounds[r.rounds.length - 1]!.rssAfterGcBytes ?? 0) - r.rssStartGcBytes) / r.rssStartGcBytes) * 100).toFixed(0)} % vs start)`) +
        (r.droppedByServer > 0 ? ` | ${r.droppedByServer} dropped by the server` : '') +
        (r.notes.length > 0 ? `\n  notes: ${r.notes.join('; ')}` : '') +
        '\n'
    );
  } catch (err) {
    process.stdout.write(`  ${row} failed: ${(err as Error).message}\n`);
  }
}
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ at: new Date().toISOString(), results }, null, 2));
