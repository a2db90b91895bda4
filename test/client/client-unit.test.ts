/**
 * The client over an in-memory WebSocket: what it sends and in which order, how it
 * matches answers, its bounds and its timers, without a server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, ZenError, type ZenClient } from '../../src/client/index.js';
import type { WebSocketConstructor, WebSocketLike } from '../../src/client/websocket.js';
import { waitFor } from '../helpers/wait.js';

const SESSION = '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1d';

/** A socket the test drives: `sent` holds what the client sent (JSON protocol). */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  binaryType = 'blob';
  readyState = 0;
  sent: Array<Record<string, unknown>> = [];
  closedByClient = false;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string | Uint8Array): void {
    this.sent.push(JSON.parse(String(data)) as Record<string, unknown>);
  }
  close(): void {
    this.closedByClient = true;
  }
  receive(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  accept(): void {
    this.receive({ type: 'accepted', data: SESSION });
  }
  serverClose(code = 1006): void {
    this.onclose?.({ code, reason: '' });
  }
  types(): string[] {
    return this.sent.map((f) => `${String(f.type)}:${String(f.channel ?? '')}`);
  }
}
const Fake = FakeSocket as unknown as WebSocketConstructor;
const last = (): FakeSocket => FakeSocket.all[FakeSocket.all.length - 1]!;

function client(extra: Parameters<typeof connect>[1] = {}): ZenClient {
  FakeSocket.all = [];
  return connect('ws://zen.test/', { WebSocket: Fake, backoff: { baseMs: 1, capMs: 5 }, ...extra });
}

test('the URL carries the protocol and the token; requests wait for `accepted`, after the subscriptions', async () => {
  const c = client({ token: 'a.b.c', protocol: 'json' });
  try {
    const sub = c.subscribe('news');
    const p = c.broadcast('news', { n: 1 });
    await waitFor('a socket', () => FakeSocket.all.length === 1);
    assert.equal(last().url, 'ws://zen.test/?protocol=json&access_token=a.b.c');
    assert.deepEqual(last().sent, []);
    // A `state` listener's request goes after the resubscriptions too.
    c.on('state', (s) => s.state === 'connected' && void c.broadcast('news', 'from listener').catch(() => undefined));
    last().accept();
    assert.deepEqual(last().types(), ['subscribe:news', 'broadcast:news', 'broadcast:news']);
    last().receive({ type: 'subscribed', channel: 'news', offset: 0, epoch: 'e' });
    last().receive({ type: 'received', channel: 'news', count: 3 });
    assert.deepEqual(await p, { count: 3 });
    assert.equal(sub.state, 'subscribed');
  } finally {
    c.close();
  }
});

test('after a drop: requests in flight reject with `disconnected`, queued ones survive, and the resubscribe carries `since`', async () => {
  const c = client();
  try {
    const sub = c.subscribe('news');
    await waitFor('a socket', () => FakeSocket.all.length === 1);
    last().accept();
    last().receive({ type: 'subscribed', channel: 'news', offset: 10, epoch: 'e1' });
    last().receive({ type: 'event', channel: 'news', data: 1, from: null, id: SESSION, offset: 11, epoch: 'e1' });
    const inflight = c.broadcast('news', 'x');
    last().serverClose(1006);
    await assert.rejects(inflight, (e: unknown) => e instanceof ZenError && e.code === 'disconnected');
    assert.equal(c.state, 'disconnected');
    assert.equal(sub.state, 'subscribing');
    const queued = c.broadcast('news', 'y');
    await waitFor('a second socket', () => FakeSocket.all.length === 2);
    last().accept();
    assert.deepEqual(last().sent, [
      { type: 'subscribe', channel: 'news', since: { offset: 11, epoch: 'e1' } },
      { type: 'broadcast', channel: 'news', data: 'y' }
    ]);
    last().receive({ type: 'received', channel: 'news', count: 0 });
    assert.deepEqual(await queued, { count: 0 });
    assert.equal(c.reconnects, 1);
  } finally {
    c.close();
  }
});

test('maxQueued bounds the requests waiting for a connection', async () => {
  const c = client({ maxQueued: 2 });
  try {
    const ok = [c.broadcast('a', 1), c.broadcast('a', 2)];
    await assert.rejects(c.broadcast('a', 3), (e: unknown) => e instanceof ZenError && e.code === 'queue full');
    c.close();
    for (const p of ok) await assert.rejects(p, (e: unknown) => e instanceof ZenError && e.code === 'closed');
  } finally {
    c.close();
  }
});

test('an attempt not accepted within connectTimeoutMs is dropped and retried', async () => {
  const c = client({ connectTimeoutMs: 20 });
  try {
    await waitFor('three attempts', () => FakeSocket.all.length >= 3);
    assert.ok(FakeSocket.all.slice(0, 2).every((s) => s.closedByClient));
    assert.notEqual(c.state, 'connected');
  } finally {
    c.close();
  }
});

test('close() is final: ready() rejects, subscribe throws, no more attempts', async () => {
  const c = client();
  await waitFor('a socket', () => FakeSocket.all.length === 1);
  c.close();
  assert.equal(c.state, 'closed');
  await assert.rejects(c.ready(), ZenError);
  assert.throws(() => c.subscribe('x'), ZenError);
  last().serverClose(1006);
  assert.equal(FakeSocket.all.length, 1);
});

test('a refresh is answered in order: `refreshed` resolves with exp, a refused token rejects with its reason', async () => {
  const c = client({ token: 'a.b.c' });
  try {
    await waitFor('a socket', () => FakeSocket.all.length === 1);
    last().accept();
    const ok = c.refreshToken('t1');
    const bad = c.refreshToken('t2');
    assert.deepEqual(last().sent, [{ type: 'refresh', token: 't1' }, { type: 'refresh', token: 't2' }]);
    last().receive({ type: 'refreshed', exp: 1732698000 });
    last().receive({ type: 'error', channel: '*', errors: ['token for another user'] });
    assert.equal(await ok, 1732698000);
    await assert.rejects(bad, (e: unknown) => e instanceof ZenError && e.code === 'token' && e.reasons[0] === 'token for another user');
  } finally {
    c.close();
  }
});

test('a URL that is not ws(s) or http(s) is refused at once', () => {
  assert.throws(() => connect('ftp://x/', { WebSocket: Fake }), TypeError);
  assert.throws(() => connect('not a url', { WebSocket: Fake }), TypeError);
});

test('a refusal is matched by its reason: `forbidden` rejects the history request, not the pending subscribe; `too many channels` is the subscribe\'s', async () => {
  const c = client();
  try {
    await waitFor('a socket', () => FakeSocket.all.length === 1);
    last().accept();
    const sub = c.subscribe('private.x');
    const errors: string[][] = [];
    sub.on('error', (e) => errors.push(e.errors));
    const h = c.history('private.x');
    assert.deepEqual(last().types(), ['subscribe:private.x', 'history:private.x']);
    last().receive({ type: 'error', channel: 'private.x', errors: ['forbidden'] });
    await assert.rejects(h, (e: unknown) => e instanceof ZenError && e.reasons[0] === 'forbidden');
    assert.deepEqual(errors, []);
    last().receive({ type: 'error', channel: 'private.x', errors: ['too many channels (at most 1)'] });
    assert.deepEqual(errors, [['too many channels (at most 1)']]);
  } finally {
    c.close();
  }
});
