import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import type { TestServer } from '../helpers/server.js';
import { decodePayload } from '../../src/audit/audit-payload.js';
import type { AuditRecord } from '../../src/store/store.js';
import { allRows, startAuditServer, waitFor } from './helpers.js';

/** The rows of one session, oldest first, as [direction, type, channel] for a compact compare. */
async function trail(srv: TestServer, sessionId: string): Promise<AuditRecord[]> {
  await srv.node.audit.flush(2000);
  return allRows(srv.node.store, { sessionId });
}
const brief = (rows: AuditRecord[]) => rows.map((r) => [r.direction, r.type, r.channel]);

describe('the audit trail of a running server', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startAuditServer({ 'rate-limit-per-sec': '5', 'rate-limit-burst': '10', 'rate-limit-max-rejected': '1000' });
  });
  after(() => srv.stop());

  test('a session’s life: open, accepted, subscribe, broadcast, unsubscribe, close — each row with its columns', async () => {
    const a = await TestClient.connect(srv.port, { token: await makeToken('alice') });
    const b = await TestClient.connect(srv.port);
    await a.subscribe('news');
    await b.subscribe('news');
    a.send({ type: 'broadcast', channel: 'news', data: { text: 'hello' } });
    const event = await b.nextOf('event');
    const received = await a.nextOf('received');
    assert.equal(received.count, 1);
    a.send({ type: 'unsubscribe', channel: 'news' });
    await a.nextOf('unsubscribed');
    await a.close();
    await waitFor('session.close row', async () => (await trail(srv, a.sessionId)).some((r) => r.type === 'session.close'));

    const rows = await trail(srv, a.sessionId);
    assert.deepEqual(brief(rows), [
      ['system', 'session.open', null],
      ['out', 'accepted', null],
      ['in', 'subscribe', 'news'],
      ['out', 'subscribed', 'news'],
      ['in', 'broadcast', 'news'],
      ['out', 'event', 'news'],
      ['out', 'received', 'news'],
      ['in', 'unsubscribe', 'news'],
      ['out', 'unsubscribed', 'news'],
      ['system', 'session.close', null]
    ]);
    for (const r of rows) {
      assert.equal(r.userId, 'alice');
      assert.equal(r.serverId, srv.node.serverId);
      assert.equal(r.sessionId, a.sessionId);
    }
    const [inRow, outRow] = [rows[4]!, rows[5]!];
    assert.equal(inRow.messageId, event.id, 'the in row carries the event id the subscriber got');
    assert.equal(outRow.messageId, event.id);
    assert.equal(inRow.recipients, null);
    assert.equal(outRow.recipients, 1);
    assert.deepEqual(JSON.parse(inRow.payload!), { text: 'hello' });
    assert.deepEqual(JSON.parse(outRow.payload!), { text: 'hello' });
    assert.equal(rows[1]!.payload, JSON.stringify(a.sessionId));
    assert.equal(rows[1]!.recipients, 1);
    const receivedRow = rows[6]!;
    assert.equal(receivedRow.messageId, event.id, 'the sender’s received shares the event id');
    assert.equal(receivedRow.recipients, 1);
    assert.deepEqual(JSON.parse(receivedRow.payload!), { count: 1 });
    assert.deepEqual(JSON.parse(rows[9]!.payload!), { code: 1000 });
    assert.equal(rows.filter((r) => r.messageId !== null).length, 3, 'only the broadcast and its answer have a message id');
    b.ws.terminate();
  });

  test('an event fanned out to many subscribers is one out row with recipients = their number', async () => {
    const subs = await Promise.all(Array.from({ length: 40 }, () => TestClient.connect(srv.port)));
    await Promise.all(subs.map((s) => s.subscribe('fanout')));
    const pub = await TestClient.connect(srv.port, { token: await makeToken('pub', ['publish']) });
    pub.send({ type: 'broadcast', channel: 'fanout', data: 1 });
    assert.equal((await pub.nextOf('received')).count, 40);
    const id = (await subs[0]!.nextOf('event')).id;
    await srv.node.audit.flush(2000);
    const rows = await allRows(srv.node.store, { messageId: id });
    assert.deepEqual(brief(rows), [['in', 'broadcast', 'fanout'], ['out', 'event', 'fanout'], ['out', 'received', 'fanout']]);
    assert.equal(rows[1]!.recipients, 40);
    assert.equal(rows[1]!.userId, 'pub');
    assert.equal((await allRows(srv.node.store, { channel: 'fanout', type: 'event' })).length, 1);
    for (const s of [...subs, pub]) s.ws.terminate();
  });

  test('rejected attempts are recorded: forbidden *, not subscribed, unauthorized private channel, invalid frame, rate limited', async () => {
    const a = await TestClient.connect(srv.port);
    a.send({ type: 'broadcast', channel: '*', data: 'to everyone' });
    assert.deepEqual((await a.nextOf('error')).errors, ['forbidden']);
    a.send({ type: 'broadcast', channel: 'elsewhere', data: 'x' });
    assert.deepEqual((await a.nextOf('error')).errors, ['not subscribed']);
    assert.equal((await a.subscribe('private.board')).type, 'unauthorized');
    a.sendRaw('{not json');
    await a.nextOf('error');
    const rows = await trail(srv, a.sessionId);
    assert.deepEqual(brief(rows).slice(2), [
      ['in', 'broadcast', '*'],
      ['out', 'error', '*'],
      ['in', 'broadcast', 'elsewhere'],
      ['out', 'error', 'elsewhere'],
      ['in', 'subscribe', 'private.board'],
      ['out', 'unauthorized', 'private.board'],
      ['in', 'invalid', '*'],
      ['out', 'error', '*']
    ]);
    assert.deepEqual(JSON.parse(rows[2]!.payload!), 'to everyone');
    assert.equal(rows[2]!.messageId, null, 'a refused broadcast has no event id');
    assert.deepEqual(JSON.parse(rows[3]!.payload!), ['forbidden']);

    // Over the burst (10): the dropped frames are recorded as rate-limited.
    for (let i = 0; i < 20; i++) a.send({ type: 'subscribe', channel: `r${i}` });
    await waitFor('rate limited', async () => (await trail(srv, a.sessionId)).filter((r) => r.type === 'rate-limited').length > 0);
    const limited = (await trail(srv, a.sessionId)).filter((r) => r.type === 'rate-limited');
    assert.ok(limited.every((r) => r.direction === 'in'));
    a.ws.terminate();
  });

  test('private channels: joined and left notices are out rows with their recipients', async () => {
    const b = await TestClient.connect(srv.port, { token: await makeToken('bob', ['private']) });
    const c = await TestClient.connect(srv.port, { token: await makeToken('carol', ['private']) });
    await b.subscribe('private.desk');
    await c.subscribe('private.desk');
    await b.nextOf('joined');
    await c.close();
    await b.nextOf('left');
    const rows = await trail(srv, c.sessionId);
    const joined = rows.find((r) => r.type === 'joined')!;
    const left = rows.find((r) => r.type === 'left')!;
    assert.equal(joined.direction, 'out');
    assert.equal(joined.recipients, 1);
    assert.deepEqual(JSON.parse(joined.payload!), { session: c.sessionId, user: 'carol' });
    assert.equal(left.recipients, 1);
    assert.equal(left.userId, 'carol');
    b.ws.terminate();
  });

  test('HTTP API broadcasts: an in row without a session, the token’s user, the same message id as the event', async () => {
    const sub = await TestClient.connect(srv.port);
    await sub.subscribe('orders');
    const res = await fetch(`http://127.0.0.1:${srv.port}/api/broadcast`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await makeToken('backend', ['publish'])}` },
      body: JSON.stringify({ channel: 'orders', data: { n: 7 } })
    });
    assert.equal(res.status, 200);
    const { id } = (await res.json()) as { id: string };
    await srv.node.audit.flush(2000);
    const rows = await allRows(srv.node.store, { messageId: id });
    assert.deepEqual(brief(rows), [['in', 'broadcast', 'orders'], ['out', 'event', 'orders']]);
    for (const r of rows) {
      assert.equal(r.sessionId, null);
      assert.equal(r.userId, 'backend');
    }
    assert.equal(rows[1]!.recipients, 1);
    sub.ws.terminate();
  });

  test('refused HTTP API broadcasts and refused upgrades are recorded: who tried, what, and why', async () => {
    const post = async (token: string | null, body: string): Promise<number> => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token !== null) headers.authorization = `Bearer ${token}`;
      return (await fetch(`http://127.0.0.1:${srv.port}/api/broadcast`, { method: 'POST', headers, body })).status;
    };
    assert.equal(await post(null, JSON.stringify({ channel: 'vault', data: 1 })), 401);
    assert.equal(await post(await makeToken('mallory'), JSON.stringify({ channel: 'vault', data: 2 })), 403);
    assert.equal(await post(await makeToken('backend', ['publish']), JSON.stringify({ channel: '*', data: 3 })), 403);
    assert.equal(await post(await makeToken('backend', ['publish']), JSON.stringify({ channel: 'vault' })), 400);
    await assert.rejects(TestClient.connect(srv.port, { token: 'not-a-jwt' }), /HTTP 401/);
    await srv.node.audit.flush(2000);

    const http = (await allRows(srv.node.store, { sessionId: null }))
      .filter((r) => r.type === 'broadcast' || r.type === 'error')
      .filter((r) => r.channel === null || r.channel === 'vault' || (r.channel === '*' && r.userId === 'backend'));
    const seen = http.map((r) => [r.direction, r.type, r.channel, r.userId, r.type === 'error' ? null : r.payload === null ? null : JSON.parse(r.payload)]);
    assert.deepEqual(seen, [
      ['in', 'broadcast', null, null, null],
      ['out', 'error', null, null, null],
      ['in', 'broadcast', null, 'mallory', null],
      ['out', 'error', null, 'mallory', null],
      ['in', 'broadcast', '*', 'backend', 3],
      ['out', 'error', '*', 'backend', null],
      ['in', 'broadcast', 'vault', 'backend', null],
      ['out', 'error', 'vault', 'backend', null]
    ]);
    const errors = http.filter((r) => r.type === 'error').map((r) => (JSON.parse(r.payload!) as string[]).join());
    assert.match(errors[0]!, /bearer token is required/);
    assert.match(errors[1]!, /publish/);
    assert.match(errors[2]!, /broadcast/);
    assert.match(errors[3]!, /missing data/);

    const refused = await allRows(srv.node.store, { type: 'session.refused' });
    assert.ok(refused.length >= 1);
    const r = refused[0]!;
    assert.equal(r.direction, 'system');
    assert.equal(r.sessionId, null);
    const p = JSON.parse(r.payload!) as { status: number; code: string; remoteAddr: string };
    assert.equal(p.status, 401);
    assert.equal(p.code, 'ERR_AUTH_TOKEN_INVALID');
    assert.equal(p.remoteAddr, '127.0.0.1');
  });

  test('refused reads of the audit trail are recorded: who asked, and why not', async () => {
    const get = async (token: string | null): Promise<number> =>
      (await fetch(`http://127.0.0.1:${srv.port}/api/audit?type=event`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } })).status;
    assert.equal(await get(null), 401);
    assert.equal(await get('not-a-jwt'), 401);
    assert.equal(await get(await makeToken('snoop', ['publish'])), 403);
    assert.equal(await get(await makeToken('auditor', ['audit'])), 200);
    await srv.node.audit.flush(2000);
    const rows = await allRows(srv.node.store, { type: 'http.refused' });
    const seen = rows.map((r) => {
      const p = JSON.parse(r.payload!) as { status: number; code: string; method: string; path: string; remoteAddr: string };
      return [r.direction, r.sessionId, r.userId, p.status, p.code, p.method, p.path, p.remoteAddr];
    });
    assert.deepEqual(seen, [
      ['system', null, null, 401, 'ERR_AUTH_TOKEN_MISSING', 'GET', '/api/audit', '127.0.0.1'],
      ['system', null, null, 401, 'ERR_AUTH_TOKEN_INVALID', 'GET', '/api/audit', '127.0.0.1'],
      ['system', null, 'snoop', 403, 'ERR_AUTH_FORBIDDEN', 'GET', '/api/audit', '127.0.0.1']
    ]);
  });

  test('binary payloads from the binary protocol survive exactly', async () => {
    const a = await TestClient.connect(srv.port, { protocol: 'bin' });
    const b = await TestClient.connect(srv.port);
    await a.subscribe('bin');
    await b.subscribe('bin');
    a.send({ type: 'broadcast', channel: 'bin', data: { blob: new Uint8Array([1, 2, 250]) } });
    const e = await b.nextOf('event');
    assert.deepEqual(e.data, { blob: 'AQL6' });
    await srv.node.audit.flush(2000);
    const [inRow] = await allRows(srv.node.store, { messageId: e.id, direction: 'in' });
    assert.deepEqual(JSON.parse(inRow!.payload!), { blob: 'AQL6' });
    const exact = decodePayload(inRow!.payload, inRow!.payloadBin) as { blob: Uint8Array };
    assert.ok(exact.blob instanceof Uint8Array);
    assert.deepEqual([...exact.blob], [1, 2, 250]);
    a.ws.terminate();
    b.ws.terminate();
  });
});

describe('ack durability', () => {
  // In-memory SQLite: the writer then calls the store itself (a file database is written
  // from a worker thread), so the test can slow its commits down.
  test('no received (nor HTTP 200) before the rows of that message are committed; fan-out does not wait', async () => {
    const srv = await startAuditServer({ database: 'sqlite::memory:' });
    try {
      const store = srv.node.store;
      const write = store.writeAudit.bind(store);
      const committedAt = new Map<string, number>();
      // Every audit transaction takes 60 ms (under the 200 ms journal bound): a slow disk.
      store.writeAudit = async (rows) => {
        await new Promise((r) => setTimeout(r, 60));
        await write(rows);
        const now = performance.now();
        for (const r of rows) if (r.messageId !== null && !committedAt.has(r.messageId)) committedAt.set(r.messageId, now);
      };
      const a = await TestClient.connect(srv.port);
      const b = await TestClient.connect(srv.port);
      await a.subscribe('ack');
      await b.subscribe('ack');
      for (let i = 0; i < 10; i++) {
        a.send({ type: 'broadcast', channel: 'ack', data: i });
        const e = await b.nextOf('event');
        const eventAt = performance.now();
        await a.nextOf('received');
        const receivedAt = performance.now();
        const committed = committedAt.get(e.id);
        assert.ok(committed !== undefined && committed <= receivedAt, `received for ${i} before its rows were committed`);
        assert.ok(eventAt < committed!, 'the subscriber got the event before the commit: fan-out did not wait');
        const rows = await allRows(store, { messageId: e.id });
        assert.equal(rows.length, 2);
      }
      const res = await fetch(`http://127.0.0.1:${srv.port}/api/broadcast`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await makeToken('app', ['publish'])}` },
        body: JSON.stringify({ channel: 'ack', data: 'http' })
      });
      const { id } = (await res.json()) as { id: string };
      const answeredAt = performance.now();
      assert.ok((committedAt.get(id) ?? Infinity) <= answeredAt, '200 before the rows were committed');
      a.ws.terminate();
      b.ws.terminate();
    } finally {
      await srv.stop();
    }
  });

  test('with --audit-durability async, received does not wait for the database', async () => {
    const srv = await startAuditServer({ 'audit-durability': 'async', database: 'sqlite::memory:' });
    try {
      const store = srv.node.store;
      const write = store.writeAudit.bind(store);
      let committed = false;
      store.writeAudit = async (rows) => {
        await new Promise((r) => setTimeout(r, 150)); // a slow database
        await write(rows);
        committed = true;
      };
      const a = await TestClient.connect(srv.port);
      await a.subscribe('fast');
      a.send({ type: 'broadcast', channel: 'fast', data: 1 });
      await a.nextOf('received');
      assert.equal(committed, false, 'async durability waited for the database');
      await srv.node.audit.flush(2000);
      assert.equal((await allRows(store, { channel: 'fast', type: 'broadcast' })).length, 1);
      a.ws.terminate();
    } finally {
      await srv.stop();
    }
  });
});
