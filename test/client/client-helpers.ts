/** Shared pieces of the client library's process tests: a `zenconn serve` with its temp folder, a Node WebSocket, collectors. */
import { join } from 'node:path';
import WebSocket from 'ws';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { tempDir, TEST_JWT_SECRET, TEST_CHANNEL_SECRET } from '../helpers/server.js';
import type { ZenClient } from '../../src/client/index.js';
import type { WebSocketConstructor } from '../../src/client/websocket.js';

/** The WebSocket the library gets on Node 20 (no global one): the `ws` package, passed in. */
export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/** Starts `zenconn serve` on 127.0.0.1 port 0 with a temp SQLite database and the test secrets. */
export async function startServe(args: string[] = []): Promise<{ zen: ZenProcess; dir: string }> {
  const dir = tempDir('zenconn-client-');
  const zen = await startZen([
    'serve',
    '--port', '0',
    '--host', '127.0.0.1',
    ...(args.includes('--public') ? [] : ['--public', join(dir, 'public')]),
    '--database', `sqlite:${join(dir, 'z.db')}`,
    '--spool-dir', join(dir, 'spool'),
    '--audit-journal-dir', join(dir, 'journal'),
    '--access-log', 'off',
    '--jwt-secret', TEST_JWT_SECRET,
    '--channel-secret', TEST_CHANNEL_SECRET,
    '--log-level', 'warn',
    ...args
  ]);
  return { zen, dir };
}

/** Every state a client went through, in order (the first is the one it started in). */
export function recordStates(client: ZenClient): string[] {
  const states: string[] = [client.state];
  client.on('state', (s) => states.push(s.state));
  return states;
}

/** `n` consecutive integers from `from`. */
export function range(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

/** Builds the browser bundle that zenconn serves at /zenconn/client.js (scripts/build-client.js); returns its text. */
export async function writeClientBundle(): Promise<string> {
  const { pathToFileURL } = await import('node:url');
  const { ROOT } = await import('../helpers/process.js');
  const script = (await import(pathToFileURL(join(ROOT, 'scripts', 'build-client.js')).href)) as { writeClientBundle(): Promise<string> };
  return script.writeClientBundle();
}
