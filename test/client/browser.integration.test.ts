/**
 * Issue #13 §6.5: the client library in headless Chromium, loaded from /zenconn/client.js
 * by a plain `<script type="module">`, against a running `zenconn serve`. Two pages
 * exchange events (one JSON, one binary); one page goes offline and comes back, and
 * recovers everything sent meanwhile; no console errors in either.
 *
 * `context.setOffline(true)` alone does not close an open WebSocket in Chromium (checked:
 * the socket stays up for as long as one waits), though it does make new connections
 * fail. A real network loss kills the socket, so page A connects through a TCP proxy and
 * the test cuts it too. The client drops its socket on the browser's `offline` event
 * anyway, and waits for `online` to reconnect (no failing attempts meanwhile).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchBrowser, collectPageErrors } from '../helpers/browser.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';
import { range, startServe, writeClientBundle } from './client-helpers.js';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>client test</title><link rel="icon" href="data:,"></head>
<body><script type="module">
import { connect } from '/zenconn/client.js';
const q = new URLSearchParams(location.search);
const client = connect('ws://127.0.0.1:' + q.get('port') + '/', { protocol: q.get('protocol'), backoff: { baseMs: 50, capMs: 300 } });
const got = [];
const states = [];
const unrecovered = [];
client.on('state', (s) => states.push(s.state));
const sub = client.subscribe('room', (e) => got.push(e.data));
sub.on('unrecovered', (u) => unrecovered.push(u));
window.zc = { client, sub, got, states, unrecovered };
</script></body></html>`;

interface PageView {
  state: string;
  sub: string;
  got: unknown[];
  states: string[];
  unrecovered: unknown[];
  reconnects: number;
}
type ZcWindow = { zc: { client: { state: string; reconnects: number; broadcast(c: string, d: unknown): Promise<{ count: number }>; presence(c: string): Promise<{ members: unknown[] }> }; sub: { state: string }; got: unknown[]; states: string[]; unrecovered: unknown[] } };

function view(page: Page): Promise<PageView> {
  return page.evaluate(() => {
    const zc = (globalThis as unknown as ZcWindow).zc;
    return { state: zc.client.state, sub: zc.sub.state, got: zc.got, states: zc.states, unrecovered: zc.unrecovered, reconnects: zc.client.reconnects };
  });
}

function membersSeenBy(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const zc = (globalThis as unknown as ZcWindow).zc;
    return (await zc.client.presence('room')).members.length;
  });
}

function broadcastFrom(page: Page, items: unknown[]): Promise<number[]> {
  return page.evaluate(async (list) => {
    const zc = (globalThis as unknown as ZcWindow).zc;
    return (await Promise.all(list.map((d) => zc.client.broadcast('room', d)))).map((r) => r.count);
  }, items);
}

test('two pages exchange events through /zenconn/client.js; one goes offline, comes back and misses nothing', async () => {
  await writeClientBundle();
  const { zen, dir } = await startServe();
  mkdirSync(join(dir, 'public'), { recursive: true });
  writeFileSync(join(dir, 'public', 'client-page.html'), PAGE);
  const proxy = await startTcpProxy({ port: zen.port });
  const browser = await launchBrowser();
  try {
    const ctxA = await browser.newContext();
    const ctxB = await browser.newContext();
    const a = await ctxA.newPage();
    const b = await ctxB.newPage();
    const errorsA = collectPageErrors(a);
    const errorsB = collectPageErrors(b);
    const base = `http://127.0.0.1:${zen.port}/client-page.html`;
    await a.goto(`${base}?port=${proxy.port}&protocol=bin`);
    await b.goto(`${base}?port=${zen.port}&protocol=json`);
    for (const p of [a, b]) await waitFor('a page subscribed', async () => (await view(p).catch(() => null))?.sub === 'subscribed');

    // Both ways, live.
    assert.deepEqual(await broadcastFrom(a, ['from a']), [1]);
    assert.deepEqual(await broadcastFrom(b, [{ from: 'b', n: 1 }]), [1]);
    await waitFor('each page to get the other one\'s event', async () => (await view(a)).got.length === 1 && (await view(b)).got.length === 1);
    assert.deepEqual((await view(b)).got, ['from a']);
    assert.deepEqual((await view(a)).got, [{ from: 'b', n: 1 }]);

    // A goes offline; its socket dies with the network (the proxy is cut).
    await ctxA.setOffline(true);
    proxy.cut('refuse');
    await waitFor('page A to see the drop', async () => (await view(a)).state === 'disconnected');
    // And the server: until it has closed A's session, events would still be written to its dead socket.
    await waitFor('the server to list B alone in the room', async () => (await membersSeenBy(b)) === 1);
    // B sends 100 events meanwhile: nobody receives them live.
    const counts = await broadcastFrom(b, range(0, 100));
    assert.deepEqual(new Set(counts), new Set([0]));
    const away = await view(a);
    assert.equal(away.state, 'disconnected', 'no reconnect while offline');
    assert.equal(away.states.filter((s) => s === 'connecting').length, 0, 'no attempt while offline (it waits for `online`)');

    proxy.restore();
    await ctxA.setOffline(false);
    await waitFor('page A to recover the 100 events', async () => (await view(a)).got.length >= 101, 20_000);
    assert.deepEqual(await broadcastFrom(b, ['after']), [1]);
    await waitFor('the live event after the recovery', async () => (await view(a)).got.length >= 102);

    const back = await view(a);
    assert.deepEqual(back.got, [{ from: 'b', n: 1 }, ...range(0, 100), 'after'], 'every event once, in order');
    assert.deepEqual(back.unrecovered, []);
    assert.equal(back.reconnects, 1);
    assert.deepEqual(errorsA, []);
    assert.deepEqual(errorsB, []);
  } finally {
    await browser.close();
    await proxy.close();
    await zen.stop();
  }
});
