import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pack, unpack } from 'msgpackr';
import { startServer, type TestServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';

describe('POST /api/broadcast', () => {
  let srv: TestServer;
  let url: string;
  before(async () => {
    srv = await startServer({ 'max-http-body-bytes': '2048' });
    url = `http://127.0.0.1:${srv.port}/api/broadcast`;
  });
  after(() => srv.stop());

  const post = async (body: string | Buffer, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

  test('a publish token sends an event with from null to subscribers and gets {id, count}', async () => {
    const a = await TestClient.connect(srv.port);
    const b = await TestClient.connect(srv.port, { protocol: 'bin' });
    await a.subscribe('orders');
    await b.subscribe('orders');
    const res = await post(JSON.stringify({ channel: 'orders', data: { n: 1 } }), { authorization: `Bearer ${await makeToken('app', ['publish'])}` });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: string; count: number };
    assert.equal(body.count, 2);
    const ea = await a.nextOf('event');
    assert.deepEqual(ea, { type: 'event', channel: 'orders', data: { n: 1 }, from: null, id: body.id });
    const eb = await b.nextOf('event');
    assert.equal(eb.id, body.id);
    assert.equal(eb.from, null);
    a.ws.terminate();
    b.ws.terminate();
  });

  test('MessagePack in and out (Content-Type application/msgpack, X-Bin-Protocol)', async () => {
    const a = await TestClient.connect(srv.port);
    await a.subscribe('bin-api');
    const res = await post(pack({ channel: 'bin-api', data: { price: 1.5 } }), {
      'content-type': 'application/msgpack',
      'x-bin-protocol': '1',
      authorization: `Bearer ${await makeToken('app', ['publish'])}`
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/msgpack');
    const body = unpack(Buffer.from(await res.arrayBuffer())) as { id: string; count: number };
    assert.equal(body.count, 1);
    assert.deepEqual((await a.nextOf('event')).data, { price: 1.5 });
    a.ws.terminate();
  });

  test('* needs the broadcast grant as well', async () => {
    const a = await TestClient.connect(srv.port);
    const publishOnly = await post(JSON.stringify({ channel: '*', data: 1 }), { authorization: `Bearer ${await makeToken('app', ['publish'])}` });
    assert.equal(publishOnly.status, 403);
    const both = await post(JSON.stringify({ channel: '*', data: 2 }), { authorization: `Bearer ${await makeToken('app', ['publish', 'broadcast'])}` });
    assert.equal(both.status, 200);
    assert.equal((await a.nextOf('event')).channel, '*');
    a.ws.terminate();
  });

  test('401 without or with a bad token, 403 without publish, 400 for bad bodies, 413 over the body limit', async () => {
    const good = `Bearer ${await makeToken('app', ['publish'])}`;
    assert.equal((await post('{"channel":"x","data":1}')).status, 401);
    assert.equal((await post('{"channel":"x","data":1}', { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await post('{"channel":"x","data":1}', { authorization: `Bearer ${await makeToken('u', [])}` })).status, 403);
    for (const bad of ['{not json', '[]', '{"data":1}', '{"channel":"bad channel","data":1}', '{"channel":"x"}']) {
      const r = await post(bad, { authorization: good });
      assert.equal(r.status, 400, bad);
      assert.equal(typeof ((await r.json()) as { error: string }).error, 'string');
    }
    const limit = JSON.stringify({ channel: 'x', data: 'z'.repeat(2048 - 25) });
    assert.equal(Buffer.byteLength(limit), 2048);
    assert.equal((await post(limit, { authorization: good })).status, 200);
    assert.equal((await post(JSON.stringify({ channel: 'x', data: 'z'.repeat(2048) }), { authorization: good })).status, 413);
    const get = await fetch(url);
    assert.equal(get.status, 405);
  });
});

describe('POST /api/broadcast takes a message of the size a frame may have', () => {
  test('a body of --max-payload-bytes is accepted, one byte more is 413, although --max-http-body-bytes is larger', async () => {
    const srv = await startServer({ 'max-payload-bytes': '1024', 'max-http-body-bytes': '4096' });
    try {
      const post = async (body: string): Promise<number> =>
        (await fetch(`http://127.0.0.1:${srv.port}/api/broadcast`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${await makeToken('app', ['publish'])}` }
        })).status;
      const limit = JSON.stringify({ channel: 'x', data: 'z'.repeat(1024 - 25) });
      assert.equal(Buffer.byteLength(limit), 1024);
      assert.equal(await post(limit), 200);
      assert.equal(await post(JSON.stringify({ channel: 'x', data: 'z'.repeat(1024 - 24) })), 413);
    } finally {
      await srv.stop();
    }
  });
});
