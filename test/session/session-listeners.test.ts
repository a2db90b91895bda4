import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { startServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Memory per session (#15): a session's socket and WebSocket carry only listeners shared
 * by every session, never a closure made for it (one `once('close', () => …)` held ~200
 * bytes for the session's whole life, and there were four).
 */
test("two sessions' sockets and WebSockets have the very same listeners: none is a closure per session", async () => {
  const srv = await startServer({ 'max-connections': '10', 'max-connections-per-ip': '10' });
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await TestClient.connect(srv.port);
      await c.subscribe('news');
      clients.push(c);
    }
    await waitFor('both sessions open', () => srv.node.hub.sessions.size === 2);
    const [a, b] = [...srv.node.hub.sessions.values()].map((s) => s.conn as unknown as { socket: Socket; ws: WebSocket });
    for (const event of ['close', 'end', 'error', 'data', 'drain', 'timeout']) {
      assert.deepEqual(a!.socket.listeners(event), b!.socket.listeners(event), `socket '${event}'`);
    }
    for (const event of ['message', 'close', 'ping', 'pong', 'error']) {
      assert.deepEqual(a!.ws.listeners(event), b!.ws.listeners(event), `WebSocket '${event}'`);
    }
    // Not vacuous: the admission's count is among them, and each socket has its WebSocket's handlers.
    assert.ok(a!.socket.listeners('close').some((f) => f.name === 'onCountedClose'), a!.socket.listeners('close').map((f) => f.name).join());
    assert.ok(a!.ws.listenerCount('message') > 0 && a!.socket.listenerCount('data') > 0);

    // The shared listener still does its job: a closed session frees its place under both caps.
    const opened = srv.node.admission.connections;
    clients.pop()!.close();
    await waitFor('the closed connection left the count', () => srv.node.admission.connections === opened - 1);
  } finally {
    for (const c of clients) c.close();
    await srv.stop();
  }
});
