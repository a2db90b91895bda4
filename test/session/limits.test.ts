import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { startServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';

async function refusedStatus(port: number, options: Parameters<typeof TestClient.connect>[1]): Promise<number> {
  try {
    const c = await TestClient.connect(port, options);
    c.ws.terminate();
    return 101;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

describe('handshake', () => {
  test('tokens: valid, expired, bad signature, garbage; anonymous on and off', async () => {
    const srv = await startServer();
    const off = await startServer({ anonymous: false });
    try {
      const good = await TestClient.connect(srv.port, { token: await makeToken('alice', ['publish']) });
      good.ws.terminate();
      assert.equal(await refusedStatus(srv.port, { token: await makeToken('alice', [], { exp: Math.floor(Date.now() / 1000) - 60 }) }), 401);
      assert.equal(await refusedStatus(srv.port, { token: await makeToken('alice', [], { secret: 'not-the-secret-0123456789abcdef' }) }), 401);
      assert.equal(await refusedStatus(srv.port, { token: 'not.a.jwt' }), 401);
      assert.equal(await refusedStatus(srv.port, { path: `/?access_token=${await makeToken('q')}` }), 101);
      assert.equal(await refusedStatus(srv.port, {}), 101);
      assert.equal(await refusedStatus(off.port, {}), 401);
      assert.equal(await refusedStatus(off.port, { token: await makeToken('bob') }), 101);
    } finally {
      await srv.stop();
      await off.stop();
    }
  });

  test('protocol choice: both headers are a 400; subprotocol is echoed; ?protocol=bin works', async () => {
    const srv = await startServer();
    try {
      assert.equal(await refusedStatus(srv.port, { headers: { 'x-bin-protocol': '1', 'x-json-protocol': '1' } }), 400);
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, ['zenconn.bin']);
      // The first frame can arrive in the same read as the 101: listen before 'open'.
      const firstFrame = new Promise<{ data: Buffer; isBinary: boolean }>((r) => ws.once('message', (data: Buffer, isBinary: boolean) => r({ data, isBinary })));
      await new Promise((r) => ws.once('open', r));
      assert.equal(ws.protocol, 'zenconn.bin');
      const first = await firstFrame;
      assert.equal(first.isBinary, true);
      ws.terminate();
      const q = await TestClient.connect(srv.port, { protocol: 'bin', path: '/?protocol=bin', headers: {} });
      assert.equal(q.sessionId.length, 36);
      q.ws.terminate();
    } finally {
      await srv.stop();
    }
  });

  test('origin allow-list: 403 when set and not matched', async () => {
    const srv = await startServer({ 'allowed-origins': 'https://app.example' });
    try {
      assert.equal(await refusedStatus(srv.port, { headers: { origin: 'https://evil.example' } }), 403);
      assert.equal(await refusedStatus(srv.port, { headers: {} }), 403);
      assert.equal(await refusedStatus(srv.port, { headers: { origin: 'https://app.example' } }), 101);
    } finally {
      await srv.stop();
    }
  });
});

describe('limits', () => {
  test('a frame over max-payload-bytes closes with 1009; one at the limit passes', async () => {
    const srv = await startServer({ 'max-payload-bytes': '1024' });
    try {
      const a = await TestClient.connect(srv.port);
      await a.subscribe('big');
      const frame = (n: number): string => {
        const base = JSON.stringify({ type: 'broadcast', channel: 'big', data: '' });
        return base.replace('""', JSON.stringify('x'.repeat(n - base.length)));
      };
      a.sendRaw(frame(1024));
      assert.equal((await a.nextOf('received')).count, 0);
      a.sendRaw(frame(1025));
      assert.equal(await a.closed(), 1009);
    } finally {
      await srv.stop();
    }
  });

  test('rate limit: over the burst gets error frames, going on closes with 1008; publish holders are exempt', async () => {
    const srv = await startServer({ 'rate-limit-per-sec': '10', 'rate-limit-burst': '20', 'rate-limit-max-rejected': '30' });
    try {
      const a = await TestClient.connect(srv.port);
      for (let i = 0; i < 25; i++) a.send({ type: 'subscribe', channel: `c${i % 5}` });
      const frames: string[] = [];
      for (let i = 0; i < 25; i++) {
        const f = await a.next();
        frames.push(f.type === 'error' ? f.errors[0]! : f.type);
      }
      assert.equal(frames.filter((t) => t === 'subscribed').length, 20);
      assert.equal(frames.filter((t) => t === 'rate limited').length, 5);
      for (let i = 0; i < 40; i++) a.send({ type: 'subscribe', channel: 'c0' });
      assert.equal(await a.closed(), 1008);

      const pub = await TestClient.connect(srv.port, { token: await makeToken('backend', ['publish']) });
      for (let i = 0; i < 300; i++) pub.send({ type: 'broadcast', channel: 'feed', data: i });
      for (let i = 0; i < 300; i++) assert.equal((await pub.next()).type, 'received');
      pub.ws.terminate();
    } finally {
      await srv.stop();
    }
  });

  test('max channels per session: the one over the limit is an error, the session stays', async () => {
    const srv = await startServer({ 'max-channels-per-session': '3' });
    try {
      const a = await TestClient.connect(srv.port);
      for (const ch of ['a', 'b', 'c']) assert.equal((await a.subscribe(ch)).type, 'subscribed');
      const e = await a.subscribe('d');
      assert.equal(e.type, 'error');
      assert.equal(e.channel, 'd');
      assert.equal(srv.node.hub.channels.has('d'), false);
      a.send({ type: 'unsubscribe', channel: 'a' });
      await a.nextOf('unsubscribed');
      assert.equal((await a.subscribe('d')).type, 'subscribed');
      a.ws.terminate();
    } finally {
      await srv.stop();
    }
  });

  test('a slow consumer is closed with 1013 and its buffer stays bounded', async () => {
    const srv = await startServer({ 'max-buffered-bytes': '262144' });
    try {
      const slow = await TestClient.connect(srv.port);
      await slow.subscribe('firehose');
      (slow.ws as unknown as { _socket: Socket })._socket.pause();
      const pub = await TestClient.connect(srv.port, { token: await makeToken('backend', ['publish']) });
      const payload = 'y'.repeat(60000);
      let closedCode: number | null = null;
      const session = [...srv.node.hub.sessions.values()].find((s) => s.id === slow.sessionId)!;
      for (let i = 0; i < 2000 && closedCode === null; i++) {
        pub.send({ type: 'broadcast', channel: 'firehose', data: payload });
        await pub.nextOf('received');
        assert.ok(session.conn.bufferedAmount <= 262144 + 70000, `buffered ${session.conn.bufferedAmount}`);
        if (session.state !== 'open') closedCode = session.closeCode;
      }
      assert.equal(closedCode, 1013);
      slow.ws.terminate();
      pub.ws.terminate();
    } finally {
      await srv.stop();
    }
  });

  test('a silent session is terminated after the idle timeout; pongs keep it alive', async () => {
    const srv = await startServer({ 'ping-interval-ms': '100', 'idle-timeout-ms': '400' });
    try {
      const alive = await TestClient.connect(srv.port);
      const silent = await TestClient.connect(srv.port);
      // ws answers pings automatically; stop the silent one from answering.
      (silent.ws as unknown as { pong: () => void }).pong = () => {};
      const sock = (silent.ws as unknown as { _socket: Socket })._socket;
      sock.pause();
      // The silent one goes once it has been quiet for the idle timeout; the other, as old, stays.
      await waitFor('the silent session terminated', () => !srv.node.hub.sessions.has(silent.sessionId));
      assert.equal(srv.node.hub.sessions.has(silent.sessionId), false);
      assert.equal(srv.node.hub.sessions.has(alive.sessionId), true);
      alive.ws.terminate();
      silent.ws.terminate();
    } finally {
      await srv.stop();
    }
  });
});
