import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/server.js';
import { localZenArgs } from './cluster-helpers.js';
import { makeToken } from '../helpers/tokens.js';

/** A running `zenconn serve` process with its temp folder. */
export interface ServeUnderTest {
  zen: ZenProcess;
  port: number;
  dir: string;
  cleanup(): Promise<void>;
}

/** Starts `zenconn serve --port 0` with a temp SQLite database, the test secrets and `args`. */
export async function startServe(args: string[] = []): Promise<ServeUnderTest> {
  const dir = tempDir('zenconn-admin-');
  const zen = await startZen(['serve', ...localZenArgs(dir), '--database', `sqlite:${join(dir, 'z.db')}`, ...args]);
  return {
    zen,
    port: zen.port,
    dir,
    async cleanup() {
      if (zen.child.exitCode === null && zen.child.signalCode === null) zen.child.kill('SIGKILL');
      await zen.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** A token with the `admin` and `audit` grants: what the dashboard is signed in with. */
export function opsToken(): Promise<string> {
  return makeToken('ops', ['admin', 'audit']);
}

/** One request to the admin API: status and parsed JSON body. */
export async function adminApi<T = Record<string, unknown>>(port: number, path: string, options: { token?: string | null; method?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, body: body as T };
}

/** `POST /api/broadcast` with a `broadcast` token; returns how many sessions it went to. */
export async function broadcast(port: number, channel: string, data: unknown): Promise<number> {
  const r = await adminApi<{ count: number }>(port, '/api/broadcast', { method: 'POST', token: await makeToken('app', ['broadcast', 'publish']), body: { channel, data } });
  if (r.status !== 200) throw new Error(`broadcast: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.count;
}
