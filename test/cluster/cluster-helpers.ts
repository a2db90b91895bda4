import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import Database from 'better-sqlite3';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { tempDir, TEST_JWT_SECRET, TEST_CHANNEL_SECRET } from '../helpers/server.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import type { TestClient } from '../helpers/client.js';
import type { WorkerView, SessionView } from '../../src/cluster/registry.js';

/** A running `zenconn agent` with its temp folder and the pids it was seen with. */
export interface AgentUnderTest {
  zen: ZenProcess;
  port: number;
  dir: string;
  /** sqlite:… or the PostgreSQL URL it was started with. */
  database: string;
  /** `GET /agent/workers` with an admin token. */
  workers(): Promise<WorkerView[]>;
  /** `GET /agent/sessions` with an admin token. */
  sessions(query?: string): Promise<SessionView[]>;
  /** Waits until `check` passes on the workers list (polling), or throws with the last list. */
  waitWorkers(check: (w: WorkerView[]) => boolean, timeoutMs?: number): Promise<WorkerView[]>;
  /** Kills the agent and every process it started (SIGKILL), whatever state they are in. */
  cleanup(): Promise<void>;
}

let adminToken: string | null = null;
/** An admin-grant token for the test secret. */
export async function admin(): Promise<string> {
  adminToken ??= await makeToken('ops', ['admin']);
  return adminToken;
}

/**
 * The options of a test process of `serve` or `agent` but its database: any port on
 * 127.0.0.1, its files under `dir`, access log off, the test secrets, warnings only.
 */
export function localZenArgs(dir: string): string[] {
  return [
    '--port', '0',
    '--host', '127.0.0.1',
    '--public', join(dir, 'public'),
    '--access-log', 'off',
    '--spool-dir', join(dir, 'spool'),
    '--audit-journal-dir', join(dir, 'journal'),
    '--jwt-secret', TEST_JWT_SECRET,
    '--channel-secret', TEST_CHANNEL_SECRET,
    '--log-level', 'warn'
  ];
}

/**
 * Starts `zenconn agent --port 0 --host 127.0.0.1` with a temp SQLite database (unless
 * `--database` is in `args`), access log off, the test secrets and `args`.
 */
export async function startAgent(args: string[] = [], options: { env?: NodeJS.ProcessEnv } = {}): Promise<AgentUnderTest> {
  const dir = tempDir('zenconn-cluster-');
  const i = args.indexOf('--database');
  const database = i >= 0 ? args[i + 1]! : `sqlite:${join(dir, 'z.db')}`;
  const zen = await startZen(
    [
      'agent',
      ...localZenArgs(dir),
      ...(i >= 0 ? [] : ['--database', database]),
      ...args
    ],
    { env: options.env, timeoutMs: 30000 }
  );
  const seen = new Set<number>();
  const tls = args.includes('--tls-cert');
  // A probe that lands on a worker in its last moments must not eat a polling window: retry after 750 ms.
  const workers = async (): Promise<WorkerView[]> => {
    const res = await httpGet(zen.port, '/agent/workers', { authorization: `Bearer ${await admin()}` }, tls, 750);
    if (res.status !== 200) throw new Error(`/agent/workers: ${res.status}`);
    const list = (JSON.parse(res.body) as { workers: WorkerView[] }).workers;
    for (const w of list) seen.add(w.pid);
    return list;
  };
  const t: AgentUnderTest = {
    zen,
    port: zen.port,
    dir,
    database,
    workers,
    async sessions(query = '') {
      const res = await httpGet(zen.port, `/agent/sessions${query}`, { authorization: `Bearer ${await admin()}` }, tls);
      if (res.status !== 200) throw new Error(`/agent/sessions: ${res.status} ${res.body}`);
      return (JSON.parse(res.body) as { sessions: SessionView[] }).sessions;
    },
    async waitWorkers(check, timeoutMs = 5000) {
      let last: WorkerView[] = [];
      const matched = async (): Promise<boolean> => {
        try {
          last = await workers();
        } catch {
          return false; // the port may be between workers; try again
        }
        return check(last);
      };
      try {
        await waitFor('the workers to match', matched, timeoutMs, 50);
      } catch {
        throw new Error(`workers never matched: ${JSON.stringify(last.map((w) => ({ pid: w.pid, state: w.state, sessions: w.sessions })))}`);
      }
      return last;
    },
    async cleanup() {
      for (const pid of childPids(zen.child.pid!)) seen.add(pid);
      if (zen.child.exitCode === null && zen.child.signalCode === null) zen.child.kill('SIGKILL');
      for (const pid of seen) kill(pid, 'SIGKILL');
      await zen.exited;
    }
  };
  try {
    await workers();
  } catch (err) {
    await t.cleanup();
    throw err;
  }
  return t;
}

/** One GET on a fresh connection (no keep-alive), HTTP or HTTPS with any certificate. */
export function httpGet(port: number, path: string, headers: Record<string, string> = {}, tls = false, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      { host: '127.0.0.1', port, path, headers, agent: false, rejectUnauthorized: false, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      }
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Paces a loop of background traffic (never a wait for a state: use waitFor for that). */
export function pace(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The events (by their data) a client has received and not yet taken. */
export function eventData(c: TestClient): unknown[] {
  return c.frames.filter((f) => f.type === 'event').map((f) => (f as { data: unknown }).data);
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Whether a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Pids whose parent is `ppid` (from /proc). */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Rows of the SQLite database of an agent under test. */
export function sqliteRows(database: string): {
  servers: Array<Record<string, unknown>>;
  sessions: Array<Record<string, unknown>>;
  system: Array<Record<string, unknown>>;
} {
  const db = new Database(database.slice('sqlite:'.length), { readonly: true });
  try {
    return {
      servers: db.prepare('SELECT * FROM servers ORDER BY started_at').all() as Array<Record<string, unknown>>,
      sessions: db.prepare('SELECT * FROM sessions ORDER BY connected_at').all() as Array<Record<string, unknown>>,
      /** The audit trail's `system` rows. */
      system: db.prepare("SELECT * FROM audit WHERE direction = 'system' ORDER BY at, id").all() as Array<Record<string, unknown>>
    };
  } finally {
    db.close();
  }
}

/** The pid of the worker that holds each client's session. */
export async function placement(agent: AgentUnderTest, clients: TestClient[]): Promise<number[]> {
  // The agent hears of a session with its worker's next registry batch (REGISTRY_COALESCE_MS).
  let byId = new Map<string, number>();
  await waitFor('the agent to list every session', async () => {
    byId = new Map((await agent.sessions()).map((s) => [s.id, s.pid]));
    return clients.every((c) => byId.has(c.sessionId));
  });
  return clients.map((c) => byId.get(c.sessionId)!);
}

/**
 * A free TCP port such that `port + 1` … `port + n - 1` were free too, a moment ago.
 * Tried below Linux's ephemeral range (32768–60999 by default) first: outgoing
 * connections never take those ports, so a run stays free even while many clients (a
 * scale bench, another suite) hold most ephemeral ports; then anywhere port 0 gives.
 */
export async function freePortRun(n: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = attempt < 50 ? 20_000 + Math.floor(Math.random() * (12_000 - n)) : await listenAndClose(0).catch(() => -1);
    if (base < 0) continue;
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = (await listenAndClose(base + i).catch(() => -1)) === base + i;
    if (ok) return base;
  }
  throw new Error('no run of free ports');
}

function listenAndClose(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}
