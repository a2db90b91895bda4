/**
 * The scale bench's client processes as the parent sees them (scale.ts, scale-rate.ts):
 * one forked scale-client.ts per loopback address, a message to it, and a wait for its
 * next message of a kind.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Target } from './client-protocols.js';
import type { FromScaleClient, ToScaleClient } from './scale-client.js';

/** One client process: its target, its share of the sessions, who waits for its messages. */
export interface Client {
  child: ChildProcess;
  target: Target;
  count: number;
  waiters: Array<{ ev: FromScaleClient['ev']; resolve: (m: FromScaleClient) => void }>;
}

const CLIENT_PATH = fileURLToPath(new URL('./scale-client.js', import.meta.url));

/** Forks a client process that will dial `target` for `count` sessions; its messages go to their waiters. */
export function forkClient(target: Target, count: number): Client {
  const child = fork(CLIENT_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const client: Client = { child, target, count, waiters: [] };
  child.on('message', (m: FromScaleClient) => {
    const at = client.waiters.findIndex((w) => w.ev === m.ev);
    if (at >= 0) client.waiters.splice(at, 1)[0]!.resolve(m);
  });
  return client;
}

/** Sends `message` to the client process. */
export function send(client: Client, message: ToScaleClient): void {
  client.child.send(message);
}

/** The client's next message of kind `ev`; rejects after `timeoutMs`. */
export function next<E extends FromScaleClient['ev']>(client: Client, ev: E, timeoutMs: number): Promise<Extract<FromScaleClient, { ev: E }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client process on ${client.target.host}: no ${ev} in ${timeoutMs} ms`)), timeoutMs);
    client.waiters.push({
      ev,
      resolve: (m) => {
        clearTimeout(timer);
        resolve(m as Extract<FromScaleClient, { ev: E }>);
      }
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `stepMs` until it holds or `timeoutMs` passed; its last answer. */
export async function waitUntil(check: () => boolean, timeoutMs: number, stepMs = 250): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (check()) return true;
    await sleep(stepMs);
  }
  return check();
}
