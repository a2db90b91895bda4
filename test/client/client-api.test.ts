/**
 * The client library's API against a real node over real sockets: history, presence,
 * private channels signed per session (again after a reconnect), broadcast refusals,
 * requests queued before the connection, token refresh through getToken, 4001 without it,
 * and the `ws` package loaded on its own when Node has no global WebSocket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, ZenError, type ChannelEvent, type ZenClient } from '../../src/client/index.js';
import { signChannel } from '../../src/auth/channel-signature.js';
import { startServer, TEST_CHANNEL_SECRET, type TestServer } from '../helpers/server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { NodeWebSocket, range } from './client-helpers.js';

async function withServer(fn: (server: TestServer, clients: ZenClient[]) => Promise<void>): Promise<void> {
  const server = await startServer();
  const clients: ZenClient[] = [];
  try {
    await fn(server, clients);
  } finally {
    for (const c of clients) c.close();
    await server.stop();
  }
}
const url = (port: number): string => `ws://127.0.0.1:${port}/`;

test('requests made before the connection wait for it; history() returns the channel past events with positions', () =>
  withServer(async (server, clients) => {
    const a = connect(url(server.port), { WebSocket: NodeWebSocket, protocol: 'bin' });
    const b = connect(url(server.port), { WebSocket: NodeWebSocket });
    clients.push(a, b);
    assert.equal(a.state, 'connecting');
    const got: ChannelEvent[] = [];
    b.subscribe('news', (e) => got.push(e));
    a.subscribe('news');
    await waitFor('b subscribed', () => b.getSubscription('news')?.state === 'subscribed');
    // Queued while a connects: its subscribe goes first, then the broadcasts, in order.
    const counts = await Promise.all(range(0, 5).map((i) => a.broadcast('news', { i })));
    assert.deepEqual(counts, range(0, 5).map(() => ({ count: 1 })));
    await waitFor('five events', () => got.length === 5);
    const first = got[0]!;
    for (const c of [a, b]) {
      const h = await c.history('news', { since: { offset: first.offset! - 1, epoch: first.epoch! } });
      assert.deepEqual(h.events.map((e) => e.data), range(0, 5).map((i) => ({ i })), `history over ${c.protocol}`);
      assert.deepEqual(h.events.map((e) => e.offset), got.map((e) => e.offset));
      assert.equal(h.offset, got[4]!.offset);
      assert.equal(h.complete, true);
    }
    const latest = await b.getSubscription('news')!.history({ limit: 2 });
    assert.deepEqual(latest.events.map((e) => e.data), [{ i: 3 }, { i: 4 }]);
  }));

test('a broadcast the server refuses rejects with its reasons; the next ones are matched to their own answers', () =>
  withServer(async (server, clients) => {
    const a = connect(url(server.port), { WebSocket: NodeWebSocket });
    clients.push(a);
    a.subscribe('mine');
    await a.ready();
    const refused = await a.broadcast('elsewhere', 1).then(() => null, (e: unknown) => e);
    assert.ok(refused instanceof ZenError);
    assert.equal(refused.code, 'server');
    assert.deepEqual(refused.reasons, ['not subscribed']);
    assert.deepEqual(await a.broadcast('mine', 2), { count: 0 });
  }));

test('private channels: signChannel signs for each session, again after a reconnect; presence() lists the members', () =>
  withServer(async (server, clients) => {
    const proxy = await startTcpProxy({ port: server.port });
    try {
      const signed: string[] = [];
      const sign = (session: string, channel: string): string => {
        signed.push(session);
        return signChannel(TEST_CHANNEL_SECRET, session, channel);
      };
      const alice = connect(url(proxy.port), { WebSocket: NodeWebSocket, token: await makeToken('alice'), signChannel: sign, backoff: { baseMs: 20, capMs: 100 } });
      const bob = connect(url(server.port), { WebSocket: NodeWebSocket, protocol: 'bin', token: await makeToken('bob'), signChannel: sign });
      clients.push(alice, bob);
      const joined: string[] = [];
      const subA = alice.subscribe('private.team');
      const subB = bob.subscribe('private.team');
      subB.on('joined', (m) => joined.push(m.user ?? ''));
      await waitFor('both subscribed', () => subA.state === 'subscribed' && subB.state === 'subscribed');
      const members = await subB.presence();
      assert.deepEqual(members.members.map((m) => m.user).sort(), ['alice', 'bob']);
      assert.deepEqual(members.members.map((m) => m.session).sort(), [alice.session, bob.session].sort());
      assert.equal(members.truncated, false);

      const firstSession = alice.session;
      proxy.cut('refuse');
      await waitFor('alice to drop', () => alice.state !== 'connected');
      proxy.restore();
      await waitFor('alice back in the private channel', () => alice.state === 'connected' && subA.state === 'subscribed');
      assert.notEqual(alice.session, firstSession);
      assert.ok(signed.includes(alice.session!), 'signed again for the new session');
      await waitFor('bob to hear alice join again', () => joined.includes('alice'));
      const after = await alice.presence('private.team');
      assert.ok(after.members.some((m) => m.session === alice.session));
    } finally {
      await proxy.close();
    }
  }));

test('without a signature a private channel is unauthorized: the subscription says so', () =>
  withServer(async (server, clients) => {
    const c = connect(url(server.port), { WebSocket: NodeWebSocket });
    clients.push(c);
    const sub = c.subscribe('private.closed');
    let refused = 0;
    sub.on('unauthorized', () => refused++);
    await waitFor('the refusal', () => sub.state === 'unauthorized');
    assert.equal(refused, 1);
  }));

test('getToken: the token is refreshed before its exp over the open session, which outlives the first token', () =>
  withServer(async (server, clients) => {
    let calls = 0;
    const getToken = async (): Promise<string> => {
      calls++;
      return makeToken('carol', [], { exp: Math.floor(Date.now() / 1000) + 4 });
    };
    const c = connect(url(server.port), { WebSocket: NodeWebSocket, getToken });
    clients.push(c);
    await c.ready();
    const session = c.session;
    // The first token's deadline: its exp (≤ 4 s away) plus the server's 5 s tolerance.
    const deadline = Date.now() + 9_500;
    await waitFor('the first token to be past its deadline', () => Date.now() > deadline, 15_000, 100);
    assert.equal(c.state, 'connected');
    assert.equal(c.session, session, 'the same session: refreshed, not reconnected');
    assert.equal(c.reconnects, 0);
    assert.ok(calls >= 3, `getToken called for the connection and each refresh (${calls})`);
  }));

test('a fixed token that expires: closed with 4001, the client closes for good and says why', () =>
  withServer(async (server, clients) => {
    const c = connect(url(server.port), { WebSocket: NodeWebSocket, token: await makeToken('dave', [], { exp: Math.floor(Date.now() / 1000) + 1 }) });
    clients.push(c);
    const errors: ZenError[] = [];
    const codes: number[] = [];
    c.on('error', (e) => errors.push(e));
    c.on('state', (s) => s.code !== undefined && codes.push(s.code));
    await c.ready();
    await waitFor('the close', () => c.state === 'closed', 15_000);
    assert.equal(errors[0]?.code, 'token');
    assert.deepEqual(codes, [4001]);
    assert.equal(c.reconnects, 0);
  }));

test('without a WebSocket option the client finds one: the global one (Node >= 22), else the ws package (Node 20)', () =>
  withServer(async (server, clients) => {
    const c = connect(url(server.port));
    clients.push(c);
    await c.ready();
    assert.match(c.session ?? '', /^[0-9a-f-]{36}$/);
  }));

test('refusals of history and presence reject those requests, each with its own reason, also when pipelined with a broadcast', () =>
  withServer(async (server, clients) => {
    const c = connect(url(server.port), { WebSocket: NodeWebSocket, protocol: 'bin' });
    clients.push(c);
    await c.ready();
    const reasons = (p: Promise<unknown>): Promise<string[]> =>
      p.then(
        () => ['resolved'],
        (e: unknown) => (e instanceof ZenError ? e.reasons : [String(e)])
      );
    const [history, broadcast, presence] = await Promise.all([
      reasons(c.history('private.secret')),
      reasons(c.broadcast('private.secret', 1)),
      reasons(c.presence('private.secret'))
    ]);
    assert.deepEqual(history, ['forbidden']);
    assert.deepEqual(broadcast, ['not subscribed']);
    assert.deepEqual(presence, ['not subscribed']);
  }));

test("a replay after a reconnect does not hand the client its own broadcasts (the server never sends a session its own events)", () =>
  withServer(async (server, clients) => {
    const proxy = await startTcpProxy({ port: server.port });
    try {
      const a = connect(url(proxy.port), { WebSocket: NodeWebSocket, backoff: { baseMs: 20, capMs: 100 } });
      const b = connect(url(server.port), { WebSocket: NodeWebSocket, token: await makeToken('b', ['admin']) });
      clients.push(a, b);
      const gotA: unknown[] = [];
      const subA = a.subscribe('chat', (e) => gotA.push(e.data));
      const subB = b.subscribe('chat');
      await waitFor('both subscribed', () => subA.state === 'subscribed' && subB.state === 'subscribed');
      await b.broadcast('chat', 'b1');
      await waitFor('b1 at a', () => gotA.length === 1);
      assert.deepEqual(await a.broadcast('chat', 'a1'), { count: 1 }); // after the last event a saw: in its replay
      proxy.cut('refuse');
      await waitFor('the server to drop a', async () => (await b.presence('chat')).members.length === 1);
      await b.broadcast('chat', 'b2');
      proxy.restore();
      await waitFor('b2 at a', () => gotA.length >= 2);
      await b.broadcast('chat', 'b3');
      await waitFor('b3 at a', () => gotA.length >= 3);
      assert.deepEqual(gotA, ['b1', 'b2', 'b3']);
      assert.equal(a.reconnects, 1);
    } finally {
      await proxy.close();
    }
  }));
