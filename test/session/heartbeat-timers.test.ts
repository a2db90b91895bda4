import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

/** Timers alive in this process (the node under test runs in it). */
function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/**
 * #15, idle cost: heartbeats are one sweep per process (SessionManager.start), not a
 * timer per session, so 100,000 idle sessions make no timer storm. 300 sessions open
 * here; every one of them is pinged (by the sweep), and the process's timer count does
 * not grow with them.
 */
test('300 open sessions are all pinged by one sweep: no timer per session', async () => {
  const server = await startServer({ 'ping-interval-ms': '200', 'idle-timeout-ms': '60000' });
  const clients: WebSocket[] = [];
  try {
    const before = timers();
    const pinged = new Set<WebSocket>();
    const opened = Array.from({ length: 300 }, () => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
      ws.on('ping', () => pinged.add(ws));
      clients.push(ws);
      return new Promise<void>((resolve, reject) => {
        ws.once('message', () => resolve());
        ws.once('error', reject);
      });
    });
    await Promise.all(opened);
    await waitFor('every session counted by the server', () => server.node.sessions.size === 300);
    await waitFor('every session pinged', () => pinged.size === 300, 20_000);
    const during = timers();
    // A handful of process-wide timers may come and go (batch writers, stats); 300 sessions would add 300.
    assert.ok(during - before < 20, `timers went from ${before} to ${during} with 300 sessions open`);
  } finally {
    for (const ws of clients) ws.terminate();
    await server.stop();
  }
});
