import type { BusMessage } from '../../src/bus/bus.js';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { startServer, type TestServer } from '../helpers/server.js';
import { allRows } from '../audit/helpers.js';
import { TestClient, type ClientOptions } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { ROOT } from '../helpers/process.js';
import { RedisBus } from '../../src/bus/redis-bus.js';
import { newId } from '../../src/protocol/ids.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { testRedisUrl, randomPrefix, redisClient, waitFor, getJson, postJson, startRedis, startFreezableProxy, type OwnRedis } from './redis-helpers.js';

const busOf = (s: TestServer): RedisBus => s.node.bus as RedisBus;
type Event = Extract<ServerFrame, { type: 'event' }>;

/** Deletes every key under `prefix` (what a test left behind). */
async function dropKeys(r: Redis, prefix: string): Promise<void> {
  const keys = await r.keys(`${prefix}*`);
  if (keys.length > 0) await r.del(...keys);
}

describe('two nodes on one Redis', () => {
  const url = testRedisUrl();
  const prefix = randomPrefix();
  let redis: Redis;
  let a: TestServer;
  let b: TestServer;
  let token: string;
  const open: TestClient[] = [];
  const connect = async (srv: TestServer, options: ClientOptions = {}): Promise<TestClient> => {
    const c = await TestClient.connect(srv.port, { token, ...options });
    open.push(c);
    return c;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  };

  before(async () => {
    redis = await redisClient(url);
    token = await makeToken('alice', ['publish', 'broadcast', 'private']);
    [a, b] = await Promise.all([startServer({ bus: url, 'bus-prefix': prefix }), startServer({ bus: url, 'bus-prefix': prefix })]);
    assert.equal(a.node.bus.ready, true, 'node A joined the bus at start');
    assert.equal(b.node.bus.ready, true, 'node B joined the bus at start');
  });
  after(async () => {
    for (const c of open) c.ws.terminate();
    await Promise.all([a?.stop(), b?.stop()]);
    if (redis) {
      await dropKeys(redis, prefix);
      redis.disconnect();
    }
  });

  test('/readyz reports the bus ready', async () => {
    const r = await getJson(a.port, '/readyz');
    assert.equal(r.status, 200);
    assert.equal(r.body.bus, true);
  });

  test('a channel broadcast crosses nodes, counted on every node, never back to the sender', async () => {
    const [a1, a2, b1, b2, b3, bOther] = await Promise.all([connect(a), connect(a), connect(b), connect(b), connect(b), connect(b)]);
    for (const c of [a1, a2, b1, b2, b3]) await c.subscribe('news');
    await bOther.subscribe('other');
    await waitFor('counts to cross', () => busOf(a).remoteCount('news') === 3 && busOf(b).remoteCount('news') === 2);
    a1.send({ type: 'broadcast', channel: 'news', data: { text: 'hello' } });
    assert.deepEqual(await a1.nextOf('received'), { type: 'received', channel: 'news', count: 4 });
    for (const c of [a2, b1, b2, b3]) {
      const ev = await c.nextOf('event');
      assert.deepEqual(ev.data, { text: 'hello' });
      assert.equal(ev.from, a1.sessionId);
    }
    b2.send({ type: 'broadcast', channel: 'news', data: 2 });
    assert.deepEqual(await b2.nextOf('received'), { type: 'received', channel: 'news', count: 4 });
    for (const c of [a1, a2, b1, b3]) assert.equal((await c.nextOf('event')).data, 2);
    assert.deepEqual(await a1.quiet(150), []);
    assert.deepEqual(await b2.quiet(0), []);
    assert.deepEqual(await bOther.quiet(0), []);
    await closeAll();
  });

  test('data crosses nodes unchanged for each protocol: binary, timestamps, __proto__ keys', async () => {
    const [sender, localJson, remoteJson, remoteBin] = await Promise.all([
      connect(a, { protocol: 'bin' }),
      connect(a),
      connect(b),
      connect(b, { protocol: 'bin' })
    ]);
    for (const c of [sender, localJson, remoteJson, remoteBin]) await c.subscribe('fid');
    await waitFor('counts to cross', () => busOf(a).remoteCount('fid') === 2);
    const at = new Date(1732694400000);
    sender.send({ type: 'broadcast', channel: 'fid', data: { bin: new Uint8Array([1, 2, 3]), at, list: [1, 'x', null, 2.5], deep: { a: { b: true } } } });
    const local = await localJson.nextOf('event');
    const remote = await remoteJson.nextOf('event');
    assert.deepEqual(remote.data, local.data);
    assert.deepEqual(remote.data, { bin: 'AQID', at: at.toISOString(), list: [1, 'x', null, 2.5], deep: { a: { b: true } } });
    const bin = (await remoteBin.nextOf('event')).data as { bin: Uint8Array; at: Date };
    assert.deepEqual([...bin.bin], [1, 2, 3]);
    assert.ok(bin.at instanceof Date && bin.at.getTime() === at.getTime());

    const jsonSender = await connect(a);
    await jsonSender.subscribe('fid');
    await waitFor('count', () => busOf(b).remoteCount('fid') === 3);
    jsonSender.sendRaw('{"type":"broadcast","channel":"fid","data":{"__proto__":{"x":1},"k":2}}');
    const proto = (await remoteJson.next((f) => f.type === 'event' && f.from === jsonSender.sessionId)) as Event;
    assert.deepEqual(Object.keys(proto.data as object), ['__proto__', 'k']);
    assert.equal(Object.getPrototypeOf(proto.data), Object.prototype);
    await closeAll();
  });

  test('a broadcast to * reaches every session on every node once, not the sender', async () => {
    const [a1, a2, b1, b2] = await Promise.all([connect(a), connect(a), connect(b), connect(b)]);
    await waitFor('session counts to cross', () => busOf(a).remoteCount('*') === b.node.hub.sessions.size);
    const expected = a.node.hub.sessions.size - 1 + b.node.hub.sessions.size;
    a1.send({ type: 'broadcast', channel: '*', data: 'everyone' });
    assert.deepEqual(await a1.nextOf('received'), { type: 'received', channel: '*', count: expected });
    for (const c of [a2, b1, b2]) {
      const ev = await c.nextOf('event');
      assert.equal(ev.channel, '*');
      assert.equal(ev.data, 'everyone');
    }
    const extra = await Promise.all([a2, b1, b2].map((c) => c.quiet(100)));
    assert.deepEqual(extra, [[], [], []], 'once each');
    assert.deepEqual(await a1.quiet(0), []);
    await closeAll();
  });

  test('an HTTP publish on one node reaches the subscribers of the other', async () => {
    const [b1, b2] = await Promise.all([connect(b), connect(b)]);
    await b1.subscribe('prices');
    await b2.subscribe('prices');
    await waitFor('count', () => busOf(a).remoteCount('prices') === 2);
    const r = await postJson(a.port, '/api/broadcast', token, { channel: 'prices', data: { px: 1.5 } });
    assert.equal(r.status, 200);
    assert.equal(r.body.count, 2);
    for (const c of [b1, b2]) {
      const ev = await c.nextOf('event');
      assert.deepEqual(ev.data, { px: 1.5 });
      assert.equal(ev.from, null);
      assert.equal(ev.id, r.body.id);
    }
    await closeAll();
  });

  test('events from one sender reach the other node in the order sent (200 messages)', async (t) => {
    const [sender, receiver] = await Promise.all([connect(a), connect(b)]);
    await sender.subscribe('order');
    await receiver.subscribe('order');
    await waitFor('count', () => busOf(a).remoteCount('order') === 1);
    const started = process.hrtime.bigint();
    for (let n = 0; n < 200; n++) sender.send({ type: 'broadcast', channel: 'order', data: { n } });
    const got: number[] = [];
    for (let i = 0; i < 200; i++) got.push(((await receiver.nextOf('event')).data as { n: number }).n);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i));
    t.diagnostic(`200 events across nodes in ${ms.toFixed(1)} ms`);
    assert.deepEqual(await receiver.quiet(100), []);
    await closeAll();
  });

  test('joined and left cross nodes on private channels; membership is kept in Redis', async () => {
    const bobToken = await makeToken('bob', ['private']);
    const p = await connect(a);
    const q = await connect(b, { token: bobToken });
    assert.equal((await p.subscribe('private.desk')).type, 'subscribed');
    await waitFor('count', () => busOf(b).remoteCount('private.desk') === 1);
    assert.equal((await q.subscribe('private.desk')).type, 'subscribed');
    assert.deepEqual(await p.nextOf('joined'), { type: 'joined', channel: 'private.desk', data: { session: q.sessionId, user: 'bob' } });
    const stored = await redis.hget(`${prefix}node:${b.node.serverId}`, `m:private.desk ${q.sessionId}`);
    assert.equal(stored, '"bob"');
    await waitFor('count', () => busOf(a).remoteCount('private.desk') === 1);
    p.send({ type: 'broadcast', channel: 'private.desk', data: 'psst' });
    assert.deepEqual(await p.nextOf('received'), { type: 'received', channel: 'private.desk', count: 1 });
    assert.equal((await q.nextOf('event')).data, 'psst');

    q.send({ type: 'unsubscribe', channel: 'private.desk' });
    assert.deepEqual(await p.nextOf('left'), { type: 'left', channel: 'private.desk', data: { session: q.sessionId, user: 'bob' } });
    await waitFor('the member to leave Redis', async () => (await redis.hget(`${prefix}node:${b.node.serverId}`, `m:private.desk ${q.sessionId}`)) === null);

    // A disconnect is a leave too; and the other way round.
    await q.subscribe('private.desk');
    await p.nextOf('joined');
    const p2 = await connect(a);
    await p2.subscribe('private.desk');
    assert.deepEqual(await q.nextOf('joined'), { type: 'joined', channel: 'private.desk', data: { session: p2.sessionId, user: 'alice' } });
    assert.ok(!q.frames.some((f) => f.type === 'joined' && f.data.session === q.sessionId), 'never its own joined');
    q.ws.terminate();
    for (const c of [p, p2]) assert.deepEqual((await c.nextOf('left')).data, { session: q.sessionId, user: 'bob' });
    await closeAll();
  });

  test('a node without members of a channel receives none of its traffic', async () => {
    const [c1, c2] = await Promise.all([connect(a), connect(a)]);
    await c1.subscribe('only.a');
    await c2.subscribe('only.a');
    const key = `${prefix}ch:only.a`;
    const numsub = async (): Promise<number> => Number(((await redis.pubsub('NUMSUB', key)) as [string, number])[1]);
    await waitFor('A to subscribe', async () => (await numsub()) === 1);
    const before = { ...busOf(b).stats };
    for (let n = 0; n < 20; n++) c1.send({ type: 'broadcast', channel: 'only.a', data: n });
    for (let n = 0; n < 20; n++) assert.equal((await c2.nextOf('event')).data, n);
    for (let n = 0; n < 20; n++) assert.equal((await c1.nextOf('received')).count, 1);
    // A marker on `*` (every node's) from A after them: once B has it, any of them would have arrived.
    let marked = false;
    const unwatch = busOf(b).onMessage((m) => (marked ||= m.frame.type === 'event' && m.frame.data === 'marker'));
    busOf(a).publish({ channel: '*', frame: { type: 'event', channel: '*', data: 'marker', from: null, id: newId() }, exclude: null });
    await waitFor('B to receive the marker', () => marked);
    unwatch();
    assert.equal(busOf(b).stats.received, before.received + 1, 'B received nothing (but the marker)');
    assert.equal(busOf(b).stats.stray, before.stray, 'not even to drop it');
    const channels = (await redis.pubsub('CHANNELS', `${prefix}ch:*`)) as string[];
    assert.ok(channels.includes(key));

    // B subscribes once it has a member, and unsubscribes when the last one leaves.
    const d = await connect(b);
    await d.subscribe('only.a');
    await waitFor('B to subscribe', async () => (await numsub()) === 2);
    await waitFor('count', () => busOf(a).remoteCount('only.a') === 1);
    c1.send({ type: 'broadcast', channel: 'only.a', data: 'now' });
    assert.deepEqual(await c1.nextOf('received'), { type: 'received', channel: 'only.a', count: 2 });
    assert.equal((await d.nextOf('event')).data, 'now');
    d.send({ type: 'unsubscribe', channel: 'only.a' });
    await waitFor('B to unsubscribe', async () => (await numsub()) === 1);
    await waitFor('count', () => busOf(a).remoteCount('only.a') === 0);
    await closeAll();
  });

  test('a node that stops cleanly leaves at once: its counts vanish, its key is gone', async () => {
    const c = await startServer({ bus: url, 'bus-prefix': prefix });
    const cc = await TestClient.connect(c.port);
    await cc.subscribe('news');
    await waitFor('count', () => busOf(a).remoteCount('news') === 1);
    assert.equal(await redis.exists(`${prefix}node:${c.node.serverId}`), 1);
    assert.ok(busOf(a).knownNodes().includes(c.node.serverId));
    await c.stop();
    await waitFor('count to drop without waiting for expiry', () => busOf(a).remoteCount('news') === 0 && !busOf(a).knownNodes().includes(c.node.serverId), 1000);
    assert.equal(await redis.exists(`${prefix}node:${c.node.serverId}`), 0);
    assert.equal(await redis.sismember(`${prefix}nodes`, c.node.serverId), 0);
  });
});

describe('RedisBus on its own (as an agent would use it)', () => {
  test('messages go to the buses with members, once; counts and their change hook follow', async () => {
    const url = testRedisUrl();
    const prefix = randomPrefix();
    const redis = await redisClient(url);
    const logger = pino({ level: 'silent' });
    const one = new RedisBus({ url, prefix, nodeId: newId(), logger });
    const two = new RedisBus({ url, prefix, nodeId: newId(), logger });
    try {
      await Promise.all([one.start(), two.start()]);
      assert.ok(one.ready && two.ready);
      const changes: Array<[string, number]> = [];
      one.onRemoteCountChange((channel, count) => changes.push([channel, count]));
      const got: unknown[] = [];
      two.onMessage((m) => got.push(m));
      const gotOne: unknown[] = [];
      one.onMessage((m) => gotOne.push(m));
      two.setLocalCount('room', 4);
      await waitFor('the count', () => one.remoteCount('room') === 4);
      assert.deepEqual(changes, [['room', 4]]);
      const frame: ServerFrame = { type: 'event', channel: 'room', data: { x: [1, 2] }, from: null, id: newId(), hasBinary: false };
      assert.equal(one.publish({ channel: 'room', frame, exclude: 'someone' }), true);
      assert.equal(one.publish({ channel: 'elsewhere', frame: { ...frame, channel: 'elsewhere' }, exclude: null }), true);
      // A marker for room after them: once it is in, the message for elsewhere would have been too.
      assert.equal(one.publish({ channel: 'room', frame: { ...frame, data: 'marker' }, exclude: null }), true);
      await waitFor('the message and the marker', () => got.length >= 2);
      // Redis sequenced them: offsets 1 and 2 of room, one epoch (the rest is compared below).
      const positions = (got as BusMessage[]).map((m) => (m.frame.type === 'event' ? [m.frame.offset, typeof m.frame.epoch] : null));
      assert.deepEqual(positions, [[1, 'string'], [2, 'string']]);
      for (const m of got as BusMessage[]) if (m.frame.type === 'event') {
        delete m.frame.offset;
        delete m.frame.epoch;
      }
      assert.deepEqual(got.slice(-1), [{ channel: 'room', frame: { ...frame, data: 'marker', hasBinary: false }, exclude: null }]);
      got.pop();
      assert.deepEqual(got, [{ channel: 'room', frame: { ...frame, hasBinary: false }, exclude: 'someone' }]);
      assert.deepEqual(gotOne, [], 'never back to the publisher');
      assert.equal(two.stats.stray, 0, 'no traffic of a channel without members');
      two.setLocalCount('room', 0);
      await waitFor('the count to drop', () => one.remoteCount('room') === 0);
      assert.deepEqual(changes, [['room', 4], ['room', 0]]);
    } finally {
      await Promise.all([one.close(), two.close()]);
      await dropKeys(redis, prefix);
      redis.disconnect();
    }
  });

  test('whenSubscribed waits for every new member\'s count to be written and announced, not only a channel\'s first', async () => {
    const url = testRedisUrl();
    const prefix = randomPrefix();
    const redis = await redisClient(url);
    const id = newId();
    const bus = new RedisBus({ url, prefix, nodeId: id, logger: pino({ level: 'silent' }) });
    try {
      await bus.start();
      const written = async (): Promise<string | null> => redis.hget(`${prefix}node:${id}`, 'c:room');
      bus.setLocalCount('room', 1);
      await bus.whenSubscribed('room');
      assert.equal(await written(), '1');
      assert.equal(bus.whenSubscribed('room'), null, 'subscribed and counted');
      bus.setLocalCount('room', 2);
      const second = bus.whenSubscribed('room');
      assert.ok(second instanceof Promise, 'the channel is subscribed already, but its new count is not written yet');
      await second;
      assert.equal(await written(), '2', 'written (and announced) before the member is in effect');
      assert.equal(bus.whenSubscribed('room'), null);
      bus.setLocalCount('room', 1);
      assert.equal(bus.whenSubscribed('room'), null, 'fewer members: nothing to wait for');
    } finally {
      await bus.close();
      await dropKeys(redis, prefix);
      redis.disconnect();
    }
  });

  test('start resolves not ready when Redis is unreachable, and publish holds then refuses', async () => {
    const bus = new RedisBus({ url: 'redis://127.0.0.1:1/0', nodeId: newId(), logger: pino({ level: 'silent' }), connectTimeoutMs: 200, maxPending: 1 });
    try {
      await bus.start();
      assert.equal(bus.ready, false);
      const frame: ServerFrame = { type: 'event', channel: 'c', data: 1, from: null, id: newId() };
      assert.equal(bus.publish({ channel: 'c', frame, exclude: null }), true, 'held');
      assert.equal(bus.publish({ channel: 'c', frame, exclude: null }), false, 'over maxPending');
      assert.equal(bus.stats.refused, 1);
    } finally {
      await bus.close();
    }
    assert.equal(bus.publish({ channel: 'c', frame: { type: 'event', channel: 'c', data: 1, from: null, id: newId() }, exclude: null }), false, 'closed');
  });

  test('bad options are programmer faults, thrown at construction', () => {
    const logger = pino({ level: 'silent' });
    assert.throws(() => new RedisBus({ url: 'http://x', nodeId: 'n', logger }), /redis:\/\//);
    assert.throws(() => new RedisBus({ url: 'redis://x', nodeId: '', logger }), /nodeId/);
    assert.throws(() => new RedisBus({ url: 'redis://x', nodeId: 'n', logger, heartbeatMs: 1000, nodeTtlMs: 500 }), /nodeTtlMs/);
    assert.throws(() => new RedisBus({ url: 'redis://x', nodeId: 'n', logger, maxPending: 0 }), /maxPending/);
  });
});

describe('a node that dies', () => {
  const url = testRedisUrl();
  const prefix = randomPrefix();
  let redis: Redis;

  before(async () => {
    redis = await redisClient(url);
  });
  after(async () => {
    await dropKeys(redis, prefix);
    redis.disconnect();
  });

  test('its counts and members expire; its private-channel members are announced as left', async () => {
    const bus = new RedisBus({ url, prefix, nodeId: newId(), logger: pino({ level: 'silent' }), heartbeatMs: 100, nodeTtlMs: 600, resyncMs: 100 });
    await bus.start();
    const srv = await startServer({}, { bus });
    const token = await makeToken('alice', ['private']);
    const o = await TestClient.connect(srv.port, { token });
    try {
      await o.subscribe('news');
      await o.subscribe('private.desk');
      // The dying node: another process with 3 members of news and one of private.desk.
      const ghostSession = newId();
      const script = `
        const { RedisBus } = await import(${JSON.stringify(new URL('../../src/bus/redis-bus.js', import.meta.url).href)});
        const quiet = () => {};
        const logger = { child: () => logger, warn: quiet, info: quiet, error: quiet, debug: quiet };
        const bus = new RedisBus({ url: ${JSON.stringify(url)}, prefix: ${JSON.stringify(prefix)}, nodeId: 'ghost-${newId()}', logger, heartbeatMs: 100, nodeTtlMs: 600 });
        await bus.start();
        if (!bus.ready) process.exit(3);
        bus.setLocalCount('news', 3);
        bus.setLocalCount('private.desk', 1);
        const data = { session: ${JSON.stringify(ghostSession)}, user: 'ghost' };
        bus.publish({ channel: 'private.desk', frame: { type: 'joined', channel: 'private.desk', data }, exclude: data.session });
        await Promise.all([bus.whenSubscribed('news'), bus.whenSubscribed('private.desk')]); // its state is written then
        process.stdout.write('ready\\n');
        setInterval(() => {}, 1000);
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('ready') && resolve());
          child.once('exit', (code) => reject(new Error(`ghost exited ${code}`)));
        });
        assert.deepEqual(await o.nextOf('joined'), { type: 'joined', channel: 'private.desk', data: { session: ghostSession, user: 'ghost' } });
        await waitFor('the ghost counts', () => bus.remoteCount('news') === 3 && bus.remoteCount('private.desk') === 1);
        o.send({ type: 'broadcast', channel: 'news', data: 1 });
        assert.deepEqual(await o.nextOf('received'), { type: 'received', channel: 'news', count: 3 });
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      const killedAt = Date.now();
      assert.deepEqual(await o.nextOf('left', 5000), { type: 'left', channel: 'private.desk', data: { session: ghostSession, user: 'ghost' } });
      const tookMs = Date.now() - killedAt;
      assert.equal(bus.remoteCount('news'), 0);
      assert.equal(bus.remoteCount('private.desk'), 0);
      assert.equal(bus.knownNodes().length, 0);
      assert.ok(tookMs < 600 + 100 + 500, `gone after ${tookMs} ms (TTL 600 + resync 100)`);
      // Nobody else can say it: this node records the announced `left` in its audit trail.
      await srv.node.audit.flush(2000);
      const lefts = await allRows(srv.node.store, { sessionId: ghostSession, type: 'left' });
      assert.deepEqual(
        lefts.map((r) => [r.direction, r.channel, r.userId, r.recipients, JSON.parse(r.payload!)]),
        [['out', 'private.desk', 'ghost', 1, { session: ghostSession, user: 'ghost' }]]
      );
      o.send({ type: 'broadcast', channel: 'news', data: 2 });
      assert.deepEqual(await o.nextOf('received'), { type: 'received', channel: 'news', count: 0 });
      assert.deepEqual(await redis.smembers(`${prefix}nodes`), [bus.nodeId]);
    } finally {
      o.ws.terminate();
      await srv.stop();
    }
  });
});

describe('Redis lost and back', () => {
  const prefix = randomPrefix();
  let own: OwnRedis;
  let a: TestServer;
  let b: TestServer;
  let c: TestServer;
  let cBus: RedisBus;
  const open: TestClient[] = [];

  before(async () => {
    own = await startRedis();
    [a, b] = await Promise.all([startServer({ bus: own.url, 'bus-prefix': prefix }), startServer({ bus: own.url, 'bus-prefix': prefix })]);
    // C holds at most 2 messages, for at most 1 s.
    cBus = new RedisBus({ url: own.url, prefix, nodeId: newId(), logger: pino({ level: 'silent' }), maxPending: 2, maxPendingAgeMs: 1000, heartbeatMs: 100 });
    await cBus.start();
    c = await startServer({}, { bus: cBus });
  });
  after(async () => {
    for (const x of open) x.ws.terminate();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await own?.kill();
  });

  test('not ready while Redis is down, holds then refuses publishes, resumes by itself when it is back', async (t) => {
    const token = await makeToken('alice', ['publish']);
    const [sa, sb, sc] = await Promise.all([a, b, c].map((s) => TestClient.connect(s.port, { token })));
    open.push(sa!, sb!, sc!);
    for (const x of [sa!, sb!, sc!]) await x.subscribe('live');
    await waitFor('counts', () => busOf(a).remoteCount('live') === 2 && busOf(b).remoteCount('live') === 2);
    sa!.send({ type: 'broadcast', channel: 'live', data: 'before' });
    assert.equal((await sb!.nextOf('event')).data, 'before');
    assert.equal((await sc!.nextOf('event')).data, 'before');
    assert.equal((await sa!.nextOf('received')).count, 2);

    await own.kill();
    await waitFor('/readyz 503 on every node', async () => {
      const r = await Promise.all([a, b, c].map((s) => getJson(s.port, '/readyz')));
      return r.every((x) => x.status === 503 && x.body.bus === false);
    });

    // Held: the senders get `received` (count as last known).
    for (let n = 0; n < 3; n++) sa!.send({ type: 'broadcast', channel: 'live', data: { held: n } });
    for (let n = 0; n < 3; n++) assert.equal((await sa!.nextOf('received')).count, 2);
    // C: two held, then its queue is full: refused, with an error frame or a 503.
    sc!.send({ type: 'broadcast', channel: 'live', data: { fromC: 0 } });
    sc!.send({ type: 'broadcast', channel: 'live', data: { fromC: 1 } });
    await sc!.nextOf('received');
    await sc!.nextOf('received');
    sc!.send({ type: 'broadcast', channel: 'live', data: { fromC: 2 } });
    assert.deepEqual(await sc!.nextOf('error'), { type: 'error', channel: 'live', errors: ['bus unavailable'] });
    const http = await postJson(c.port, '/api/broadcast', token, { channel: 'live', data: 'x' });
    assert.equal(http.status, 503);
    assert.equal(http.body.code, 'ERR_BUS_UNAVAILABLE');
    assert.equal(cBus.stats.held, 2);
    // Past C's age bound: its held messages are dropped and it refuses even with room.
    await waitFor('C to drop its held messages', () => cBus.stats.dropped === 2, 3000);
    sc!.send({ type: 'broadcast', channel: 'live', data: { fromC: 3 } });
    assert.deepEqual(await sc!.nextOf('error'), { type: 'error', channel: 'live', errors: ['bus unavailable'] });
    assert.deepEqual(await sb!.quiet(0), [], 'nothing crossed during the outage');

    const restartedAt = Date.now();
    own = await startRedis(own.port);
    await waitFor(
      '/readyz 200 on every node',
      async () => {
        const r = await Promise.all([a, b, c].map((s) => getJson(s.port, '/readyz')));
        return r.every((x) => x.status === 200);
      },
      10000
    );
    const readyMs = Date.now() - restartedAt;
    // A's held messages arrive, in order, and nothing of C's.
    for (let n = 0; n < 3; n++) assert.deepEqual((await sb!.nextOf('event')).data, { held: n });
    for (let n = 0; n < 3; n++) assert.deepEqual((await sc!.nextOf('event')).data, { held: n });
    // New messages flow both ways, counted again.
    await waitFor('counts back', () => busOf(a).remoteCount('live') === 2 && busOf(c).remoteCount('live') === 2);
    sb!.send({ type: 'broadcast', channel: 'live', data: 'after' });
    assert.deepEqual(await sb!.nextOf('received'), { type: 'received', channel: 'live', count: 2 });
    assert.equal((await sa!.nextOf('event')).data, 'after');
    assert.equal((await sc!.nextOf('event')).data, 'after');
    sc!.send({ type: 'broadcast', channel: 'live', data: 'c is back' });
    assert.equal((await sa!.nextOf('event')).data, 'c is back');
    assert.equal((await sb!.nextOf('event')).data, 'c is back');
    assert.deepEqual(await sb!.quiet(100), []);
    assert.deepEqual(await sa!.quiet(0), []);
    t.diagnostic(`ready ${readyMs} ms after Redis came back`);
  });
});

describe('a Redis that stops answering', () => {
  test('is noticed by the heartbeat, left and rejoined; held messages then arrive', async () => {
    const url = testRedisUrl();
    const prefix = randomPrefix();
    const redis = await redisClient(url);
    const proxy = await startFreezableProxy(Number(new URL(url).port || 6379));
    const viaProxy = new URL(url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const bus = new RedisBus({ url: viaProxy.href, prefix, nodeId: newId(), logger: pino({ level: 'silent' }), heartbeatMs: 100, nodeTtlMs: 700 });
    await bus.start();
    const [a, b] = await Promise.all([startServer({}, { bus }), startServer({ bus: url, 'bus-prefix': prefix })]);
    const [ca, cb] = await Promise.all([TestClient.connect(a.port), TestClient.connect(b.port)]);
    try {
      await ca.subscribe('x');
      await cb.subscribe('x');
      await waitFor('counts', () => bus.remoteCount('x') === 1 && busOf(b).remoteCount('x') === 1);
      proxy.freeze();
      const frozenAt = Date.now();
      await waitFor('A not ready', async () => (await getJson(a.port, '/readyz')).status === 503, 3000);
      const noticedMs = Date.now() - frozenAt;
      ca.send({ type: 'broadcast', channel: 'x', data: 'held' });
      assert.equal((await ca.nextOf('received')).count, 1);
      proxy.thaw();
      await waitFor('A ready again', async () => (await getJson(a.port, '/readyz')).status === 200, 5000);
      assert.equal((await cb.nextOf('event')).data, 'held');
      cb.send({ type: 'broadcast', channel: 'x', data: 'back' });
      assert.equal((await ca.nextOf('event')).data, 'back');
      assert.ok(noticedMs < 1500, `noticed after ${noticedMs} ms`);
    } finally {
      ca.ws.terminate();
      cb.ws.terminate();
      await Promise.all([a.stop(), b.stop()]);
      await proxy.close();
      await dropKeys(redis, prefix);
      redis.disconnect();
    }
  });
});
