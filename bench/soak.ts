/**
 * `npm run soak`: a long churn against one zenconn server, to make a leak visible.
 *
 * Each cycle opens `--clients` subscribers (JSON and binary alternately, spread over
 * `--channels` channels), connects a publisher, broadcasts `--messages` messages over
 * those channels with a window of acks, waits for the subscribers to receive them, then
 * closes everything: half the subscribers with a close handshake, half by dropping the
 * TCP connection. Every `--report-ms` it prints the server's RSS, anonymous RSS, malloc
 * heap, data segment and open descriptors from /proc, and the growth since the first
 * report. Connections that are all closed between cycles should leave memory flat.
 *
 * First it runs the in-process churn (test/channels/churn.test.ts) with `--churn-cycles`
 * cycles: connect → subscribe (public and private) → broadcast → close, then checks that
 * the heap did not grow and every session row is closed. `npm test` runs the same file
 * with a few hundred cycles.
 *
 * Bounded: it stops after `--duration-ms` or `--max-cycles`, whichever comes first, and
 * only ever talks to 127.0.0.1. It starts its own server unless `--port` names a zenconn
 * already listening on 127.0.0.1 (then `--jwt-secret` must be that server's secret).
 *
 * Flags (env in brackets):
 *   --duration-ms N   default 600000 (10 min) [SOAK_DURATION_MS]
 *   --report-ms N     default 30000 [SOAK_REPORT_MS]
 *   --clients N       subscribers per cycle, default 200
 *   --channels N      channels per cycle, default 10
 *   --messages N      broadcasts per cycle, default 50
 *   --max-cycles N    default 1000000
 *   --churn-cycles N  cycles of the churn run first, default 20000; 0 skips it [SOAK_CHURN_CYCLES]
 *   --port N          use a running server on 127.0.0.1:N instead of starting one
 *   --jwt-secret S    its secret (with --port)
 *   --flags "…"       extra flags for the server the soak starts (e.g. "--ping-interval-ms 1000")
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { connectPublisher, connectSubscriber, type Protocol, type Subscriber, type Target } from './client-protocols.js';
import { newSecret, signToken } from './jwt.js';
import { makePayload } from './payload.js';
import { brkHeapBytes, cpuMicros, memoryStatus, type MemoryStatus } from './proc-stats.js';
import { ServerProcess } from './server-process.js';
import { zenconnSpec } from './zenconn-server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface SoakSettings {
  durationMs: number;
  reportMs: number;
  clients: number;
  channels: number;
  messages: number;
  maxCycles: number;
  churnCycles: number;
  port?: number;
  secret?: string;
  flags: string[];
}

function settings(): SoakSettings {
  const { values } = parseArgs({
    options: {
      'duration-ms': { type: 'string' },
      'report-ms': { type: 'string' },
      clients: { type: 'string' },
      channels: { type: 'string' },
      messages: { type: 'string' },
      'max-cycles': { type: 'string' },
      'churn-cycles': { type: 'string' },
      port: { type: 'string' },
      'jwt-secret': { type: 'string' },
      flags: { type: 'string' }
    }
  });
  const int = (raw: string | undefined, fallback: number, name: string, min = 1): number => {
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${raw}`);
    return n;
  };
  const s: SoakSettings = {
    durationMs: int(values['duration-ms'] ?? process.env.SOAK_DURATION_MS, 600_000, 'duration-ms'),
    reportMs: int(values['report-ms'] ?? process.env.SOAK_REPORT_MS, 30_000, 'report-ms'),
    clients: int(values.clients, 200, 'clients'),
    channels: int(values.channels, 10, 'channels'),
    messages: int(values.messages, 50, 'messages', 0),
    maxCycles: int(values['max-cycles'], 1_000_000, 'max-cycles'),
    churnCycles: int(values['churn-cycles'] ?? process.env.SOAK_CHURN_CYCLES, 20_000, 'churn-cycles', 0),
    flags: (values.flags ?? '').split(/\s+/).filter((f) => f !== '')
  };
  // Keep one process well under the 20,000 open files limit.
  if (s.clients > 10_000) throw new Error('--clients must be at most 10000');
  if (values.port !== undefined) {
    s.port = int(values.port, 0, 'port');
    if (values['jwt-secret'] === undefined) throw new Error('--port needs --jwt-secret (the running server\'s)');
    s.secret = values['jwt-secret'];
  }
  return s;
}

interface Sample {
  atMs: number;
  cycles: number;
  memory: MemoryStatus;
  heapBytes: number;
  cpuMicros: number;
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

function signedMib(bytes: number): string {
  return `${bytes >= 0 ? '+' : ''}${mib(bytes)}`;
}

function sample(pid: number, atMs: number, cycles: number): Sample {
  return { atMs, cycles, memory: memoryStatus([pid]), heapBytes: brkHeapBytes([pid]), cpuMicros: cpuMicros([pid]) };
}

function printSample(s: Sample, first: Sample | undefined, extra: string): void {
  const growth =
    first === undefined
      ? ''
      : `  (since first: RSS ${signedMib(s.memory.rssBytes - first.memory.rssBytes)} MiB, ` +
        `anon ${signedMib(s.memory.rssAnonBytes - first.memory.rssAnonBytes)} MiB, fds ${s.memory.fds - first.memory.fds >= 0 ? '+' : ''}${s.memory.fds - first.memory.fds})`;
  console.log(
    `[${(s.atMs / 1000).toFixed(0).padStart(5)} s] cycles ${String(s.cycles).padStart(6)}  ` +
      `RSS ${mib(s.memory.rssBytes)} MiB  anon ${mib(s.memory.rssAnonBytes)} MiB  heap ${mib(s.heapBytes)} MiB  ` +
      `data ${mib(s.memory.dataBytes)} MiB  fds ${s.memory.fds}  cpu ${(s.cpuMicros / 1e6).toFixed(1)} s${extra}${growth}`
  );
}

async function cycle(
  target: Target,
  token: string,
  n: number,
  s: SoakSettings,
  totals: { connections: number; messages: number; missed: number; failures: number; firstFailure?: string }
): Promise<void> {
  const channelOf = (i: number): string => `soak.${n % 3}.${i % s.channels}`;
  const received = new Int32Array(s.clients);
  const subscribers: Subscriber[] = [];
  const results = await Promise.allSettled(
    Array.from({ length: s.clients }, (_, i) =>
      connectSubscriber({
        target,
        protocol: (i % 2 === 0 ? 'json' : 'binary') as Protocol,
        channel: channelOf(i),
        timeoutMs: 10_000,
        onEvent: () => {
          received[i]!++;
        },
        onClose: () => {},
        onUnexpected: () => {}
      })
    )
  );
  for (const r of results) {
    if (r.status === 'fulfilled') subscribers.push(r.value);
    else {
      totals.failures++;
      totals.firstFailure ??= (r.reason as Error).message;
    }
  }
  totals.connections += subscribers.length + 1;

  let publisherFailure: string | undefined;
  const publisher = await connectPublisher({
    target,
    protocol: n % 2 === 0 ? 'json' : 'binary',
    channel: channelOf(0),
    token,
    timeoutMs: 10_000,
    onFailure: (message) => {
      publisherFailure ??= message;
    }
  });
  const perChannel = new Map<string, number>();
  for (let i = 0; i < s.clients; i++) perChannel.set(channelOf(i), (perChannel.get(channelOf(i)) ?? 0) + 1);
  const channels = [...perChannel.keys()];
  let expected = 0;
  await new Promise<void>((resolveSent) => {
    const timer = setTimeout(() => done(), 10_000);
    const done = (): void => {
      clearTimeout(timer);
      resolveSent();
    };
    let sent = 0;
    let acked = 0;
    let inFlight = 0;
    const pump = (): void => {
      while (inFlight < 16 && sent < s.messages && publisherFailure === undefined) {
        const channel = channels[sent % channels.length]!;
        expected += perChannel.get(channel)!;
        inFlight++;
        sent++;
        publisher.publish(makePayload(sent, false), () => {
          inFlight--;
          acked++;
          if (acked === s.messages) done();
          else pump();
        }, channel);
      }
      if (s.messages === 0 || publisherFailure !== undefined) done();
    };
    pump();
  });
  totals.messages += s.messages;
  const deadline = performance.now() + 5000;
  const total = (): number => received.reduce((a, b) => a + b, 0);
  while (total() < expected && performance.now() < deadline) await sleep(10);
  totals.missed += Math.max(0, expected - total());
  if (publisherFailure !== undefined) {
    totals.failures++;
    totals.firstFailure ??= publisherFailure;
  }
  publisher.close();
  subscribers.forEach((sub, i) => (i % 2 === 0 ? sub.close() : sub.terminate()));
  await sleep(50);
}

/** Runs the churn test file with `cycles` cycles; throws when it fails. */
function churn(cycles: number): void {
  console.log(`churn: ${cycles} cycles (test/channels/churn.test.ts)`);
  const file = join(ROOT, 'dist', 'test', 'channels', 'churn.test.js');
  const r = spawnSync(process.execPath, ['--test', file], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ZENCONN_CHURN_CYCLES: String(cycles) } });
  if (r.status !== 0) throw new Error(`the churn of ${cycles} cycles failed (exit ${r.status ?? r.signal})`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  const s = settings();
  if (s.churnCycles > 0) churn(s.churnCycles);
  let server: ServerProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'zenconn-soak-'));
  const stop = async (): Promise<void> => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => void stop().then(() => process.exit(130)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(143)));
  try {
    const secret = s.secret ?? newSecret();
    let target: Target;
    let pid: number;
    if (s.port !== undefined) {
      target = { host: '127.0.0.1', port: s.port };
      const found = listenerPid(s.port);
      if (found === undefined) throw new Error(`no process of ours listens on 127.0.0.1:${s.port}`);
      pid = found;
    } else {
      server = await ServerProcess.start(zenconnSpec({ tmpdir: dir, secret, root: ROOT }, 'serve', s.flags));
      target = server.address;
      pid = server.pid;
    }
    const token = await signToken(secret, 'soak-publisher', ['publish']);
    console.log(
      `soak: ${(s.durationMs / 1000).toFixed(0)} s against 127.0.0.1:${target.port} (pid ${pid}); per cycle ` +
        `${s.clients} subscribers over ${s.channels} channels, ${s.messages} broadcasts; report every ${s.reportMs / 1000} s`
    );
    const totals = { connections: 0, messages: 0, missed: 0, failures: 0 } as {
      connections: number;
      messages: number;
      missed: number;
      failures: number;
      firstFailure?: string;
    };
    const started = performance.now();
    const initial = sample(pid, 0, 0);
    printSample(initial, undefined, '  (before the first cycle)');
    let first: Sample | undefined;
    let nextReport = s.reportMs;
    let cycles = 0;
    while (performance.now() - started < s.durationMs && cycles < s.maxCycles) {
      await cycle(target, token, cycles, s, totals);
      cycles++;
      if (server !== undefined && !server.alive) throw new Error(`the server exited:\n${server.output}`);
      const elapsed = performance.now() - started;
      if (elapsed >= nextReport) {
        nextReport += s.reportMs;
        const now = sample(pid, elapsed, cycles);
        printSample(now, first, `  conns ${totals.connections} msgs ${totals.messages} missed ${totals.missed} failures ${totals.failures}`);
        first ??= now;
      }
    }
    // Let the last closes land, then the closing sample: descriptors should be back where they started.
    await sleep(2000);
    const last = sample(pid, performance.now() - started, cycles);
    printSample(last, first, '  (after the last cycle, idle)');
    console.log(
      `\n${cycles} cycles, ${totals.connections} connections, ${totals.messages} broadcasts, ` +
        `${totals.missed} deliveries missed, ${totals.failures} failures${totals.firstFailure === undefined ? '' : ` (first: ${totals.firstFailure})`}`
    );
    console.log(
      `RSS ${mib(initial.memory.rssBytes)} → ${mib(last.memory.rssBytes)} MiB; fds ${initial.memory.fds} → ${last.memory.fds}. ` +
        'A leak shows as RSS/anon climbing report after report at a steady cycle rate.'
    );
  } finally {
    await stop();
  }
}

/** The pid of a process listening on `port`, from /proc/net/tcp{,6} and /proc/<pid>/fd. */
function listenerPid(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A = LISTEN
      if (parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const link = readlinkSync(`/proc/${name}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
        if (inode !== undefined && inodes.has(inode)) return Number(name);
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return undefined;
}

main().catch((err: Error) => {
  console.error(`soak: ${err.message}`);
  process.exit(1);
});
