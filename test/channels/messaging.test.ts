import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TEST_CHANNEL_SECRET, type TestServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { signChannel } from '../../src/auth/channel-signature.js';
import type { ProtocolName } from '../../src/protocol/codec.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

for (const protocol of ['json', 'bin'] as ProtocolName[]) {
  describe(`messaging over the ${protocol} protocol`, () => {
    let srv: TestServer;
    const open: TestClient[] = [];
    const connect = async (token?: string): Promise<TestClient> => {
      const c = await TestClient.connect(srv.port, token === undefined ? { protocol } : { protocol, token });
      open.push(c);
      return c;
    };
    before(async () => {
      srv = await startServer();
    });
    after(async () => {
      for (const c of open) c.ws.terminate();
      await srv.stop();
    });

    test('accepted carries a UUIDv7 session id', async () => {
      const a = await connect();
      assert.match(a.sessionId, UUID);
    });

    test('subscribe answers subscribed, twice is harmless, unsubscribe answers unsubscribed', async () => {
      const a = await connect();
      assert.deepEqual(await a.subscribe('news'), { type: 'subscribed', channel: 'news' });
      assert.deepEqual(await a.subscribe('news'), { type: 'subscribed', channel: 'news' });
      assert.equal(srv.node.hub.channels.get('news')?.size, 1);
      a.send({ type: 'unsubscribe', channel: 'news' });
      assert.deepEqual(await a.nextOf('unsubscribed'), { type: 'unsubscribed', channel: 'news' });
      assert.equal(srv.node.hub.channels.has('news'), false);
    });

    test('a channel broadcast reaches every other subscriber once, never the sender, with the count', async () => {
      const [a, b, c, d] = await Promise.all([connect(), connect(), connect(), connect()]);
      for (const x of [a, b, c]) await x.subscribe('room1');
      a.send({ type: 'broadcast', channel: 'room1', data: { text: 'hi', n: 1 } });
      assert.deepEqual(await a.nextOf('received'), { type: 'received', channel: 'room1', count: 2 });
      for (const x of [b, c]) {
        const ev = await x.nextOf('event');
        assert.equal(ev.channel, 'room1');
        assert.deepEqual(ev.data, { text: 'hi', n: 1 });
        assert.equal(ev.from, a.sessionId);
        assert.match(ev.id, UUID);
      }
      assert.deepEqual(await a.quiet(), []);
      assert.deepEqual(await d.quiet(0), []);
      assert.deepEqual(await b.quiet(0), []);
    });

    test('events from one sender arrive in order', async () => {
      const [a, b] = await Promise.all([connect(), connect()]);
      await a.subscribe('order');
      await b.subscribe('order');
      for (let i = 0; i < 50; i++) a.send({ type: 'broadcast', channel: 'order', data: i });
      const got: unknown[] = [];
      for (let i = 0; i < 50; i++) got.push((await b.nextOf('event')).data);
      assert.deepEqual(got, [...Array(50).keys()]);
    });

    test('broadcast without subscribing is refused with not subscribed', async () => {
      const a = await connect();
      a.send({ type: 'broadcast', channel: 'elsewhere', data: 1 });
      assert.deepEqual(await a.nextOf('error'), { type: 'error', channel: 'elsewhere', errors: ['not subscribed'] });
    });

    test('a publish grant may broadcast into a channel without subscribing', async () => {
      const pub = await connect(await makeToken('backend', ['publish']));
      const b = await connect();
      await b.subscribe('feed');
      pub.send({ type: 'broadcast', channel: 'feed', data: 'x' });
      assert.deepEqual(await pub.nextOf('received'), { type: 'received', channel: 'feed', count: 1 });
      assert.equal((await b.nextOf('event')).from, pub.sessionId);
    });

    test('* needs the broadcast grant; with it every other session gets the event', async () => {
      const granted = await connect(await makeToken('boss', ['broadcast']));
      const anon = await connect();
      const before = srv.node.hub.sessions.size;
      granted.send({ type: 'broadcast', channel: '*', data: { alert: true } });
      assert.deepEqual(await granted.nextOf('received'), { type: 'received', channel: '*', count: before - 1 });
      const ev = await anon.nextOf('event');
      assert.equal(ev.channel, '*');
      assert.equal(ev.from, granted.sessionId);
      anon.send({ type: 'broadcast', channel: '*', data: 1 });
      assert.deepEqual(await anon.nextOf('error'), { type: 'error', channel: '*', errors: ['forbidden'] });
      assert.deepEqual((await granted.quiet()).filter((f) => f.type === 'event'), []);
    });

    test('private channel: right signature subscribes, wrong or another session’s is unauthorized', async () => {
      const a = await connect();
      const b = await connect();
      const ch = 'private.invoices';
      assert.deepEqual(await a.subscribe(ch, 'ab'.repeat(32)), { type: 'unauthorized', channel: ch });
      assert.deepEqual(await a.subscribe(ch), { type: 'unauthorized', channel: ch });
      assert.deepEqual(await a.subscribe(ch, signChannel(TEST_CHANNEL_SECRET, b.sessionId, ch)), { type: 'unauthorized', channel: ch });
      assert.deepEqual(await a.subscribe(ch, signChannel(TEST_CHANNEL_SECRET, a.sessionId, ch)), { type: 'subscribed', channel: ch });
      assert.deepEqual(await b.subscribe(ch, signChannel('wrong-secret', b.sessionId, ch)), { type: 'unauthorized', channel: ch });
    });

    test('joined and left reach the other members of a private channel', async () => {
      const ch = 'private.desk';
      const a = await connect();
      const b = await connect(await makeToken('bob', ['private']));
      assert.equal((await a.subscribe(ch, signChannel(TEST_CHANNEL_SECRET, a.sessionId, ch))).type, 'subscribed');
      assert.equal((await b.subscribe(ch)).type, 'subscribed');
      assert.deepEqual(await a.nextOf('joined'), { type: 'joined', channel: ch, data: { session: b.sessionId, user: 'bob' } });
      assert.deepEqual((await b.quiet()).filter((f) => f.type === 'joined'), []);
      const c = await connect(await makeToken('carol', ['private']));
      await c.subscribe(ch);
      assert.deepEqual(await a.nextOf('joined'), { type: 'joined', channel: ch, data: { session: c.sessionId, user: 'carol' } });
      assert.deepEqual(await b.nextOf('joined'), { type: 'joined', channel: ch, data: { session: c.sessionId, user: 'carol' } });
      c.send({ type: 'unsubscribe', channel: ch });
      assert.deepEqual(await a.nextOf('left'), { type: 'left', channel: ch, data: { session: c.sessionId, user: 'carol' } });
      await b.nextOf('left');
      await b.close();
      assert.deepEqual(await a.nextOf('left'), { type: 'left', channel: ch, data: { session: b.sessionId, user: 'bob' } });
    });

    test('public channels send no join notices', async () => {
      const a = await connect();
      const b = await connect();
      await a.subscribe('lobby');
      await b.subscribe('lobby');
      assert.deepEqual(await a.quiet(), []);
    });

    test('invalid frames answer error with the channel or *, and the session stays open', async () => {
      const a = await connect();
      a.send({ type: 'subscribe', channel: 'bad channel!' });
      const e1 = await a.nextOf('error');
      assert.equal(e1.channel, 'bad channel!');
      a.send({ type: 'subscribe', channel: '*' });
      assert.equal((await a.nextOf('error')).channel, '*');
      a.send({ type: 'unsubscribe', channel: 'x'.repeat(201) });
      assert.equal((await a.nextOf('error')).errors.length > 0, true);
      a.sendRaw(protocol === 'json' ? '{not json' : Buffer.from([0xc1, 0xff]));
      const e2 = await a.nextOf('error');
      assert.equal(e2.channel, '*');
      a.sendRaw(protocol === 'json' ? '{"type":"dance","channel":"news"}' : Buffer.from([0x92, 0x63, 0xa4, 0x6e, 0x65, 0x77, 0x73]));
      const e3 = await a.nextOf('error');
      assert.equal(e3.channel, 'news');
      assert.deepEqual(await a.subscribe('still-open'), { type: 'subscribed', channel: 'still-open' });
    });
  });
}

describe('json and binary sessions share channels', () => {
  test('each gets the event in its own encoding; binary data stays binary and is base64 for JSON', async () => {
    const srv = await startServer();
    try {
      const j = await TestClient.connect(srv.port, { protocol: 'json' });
      const b = await TestClient.connect(srv.port, { protocol: 'bin' });
      const sender = await TestClient.connect(srv.port, { protocol: 'bin' });
      for (const c of [j, b, sender]) await c.subscribe('mixed');
      const bytes = Buffer.from([1, 2, 3, 250]);
      sender.send({ type: 'broadcast', channel: 'mixed', data: { blob: bytes } });
      assert.equal((await sender.nextOf('received')).count, 2);
      const ej = await j.nextOf('event');
      assert.deepEqual(ej.data, { blob: bytes.toString('base64') });
      const eb = await b.nextOf('event');
      assert.deepEqual(Buffer.from((eb.data as { blob: Uint8Array }).blob), bytes);
      assert.equal(ej.id, eb.id);
      for (const c of [j, b, sender]) c.ws.terminate();
    } finally {
      await srv.stop();
    }
  });
});
