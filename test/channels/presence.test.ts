import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import type { ProtocolName } from '../../src/protocol/codec.js';
import type { MemberInfo } from '../../src/protocol/frames.js';

const bySession = (a: MemberInfo, b: MemberInfo): number => a.session.localeCompare(b.session);

for (const protocol of ['json', 'bin'] as ProtocolName[]) {
  describe(`presence over the ${protocol} protocol`, () => {
    let srv: TestServer;
    const open: TestClient[] = [];
    const connect = async (token?: string): Promise<TestClient> => {
      const c = await TestClient.connect(srv.port, token === undefined ? { protocol } : { protocol, token });
      open.push(c);
      return c;
    };
    before(async () => {
      srv = await startServer({ 'presence-max': '3' });
    });
    after(async () => {
      for (const c of open) c.ws.terminate();
      await srv.stop();
    });

    test('a member gets every member of a private channel, with their users', async () => {
      const a = await connect(await makeToken('alice', ['private']));
      const b = await connect(await makeToken('bob', ['private']));
      const anon = await connect();
      await a.subscribe('private.room');
      await b.subscribe('private.room');
      await anon.subscribe('private.room', undefined); // refused: no grant, no signature
      a.send({ type: 'presence', channel: 'private.room' });
      const p = await a.nextOf('presence');
      assert.equal(p.channel, 'private.room');
      assert.equal(p.truncated, false);
      assert.deepEqual(
        [...p.members].sort(bySession),
        [
          { session: a.sessionId, user: 'alice' },
          { session: b.sessionId, user: 'bob' }
        ].sort(bySession)
      );
    });

    test('a non-member is refused with an error frame, on a private and on a public channel', async () => {
      const a = await connect(await makeToken('alice', ['private']));
      await a.subscribe('private.closed');
      const outsider = await connect(await makeToken('eve', ['private', 'publish']));
      outsider.send({ type: 'presence', channel: 'private.closed' });
      assert.deepEqual(await outsider.nextOf('error'), { type: 'error', channel: 'private.closed', errors: ['not subscribed'] });
      outsider.send({ type: 'presence', channel: 'public-room' });
      assert.deepEqual(await outsider.nextOf('error'), { type: 'error', channel: 'public-room', errors: ['not subscribed'] });
      assert.deepEqual(await outsider.quiet(), []);
    });

    test('an admin grant may ask without being a member', async () => {
      const a = await connect(await makeToken('alice', ['private']));
      await a.subscribe('private.watched');
      const admin = await connect(await makeToken('root', ['admin']));
      admin.send({ type: 'presence', channel: 'private.watched' });
      assert.deepEqual(await admin.nextOf('presence'), { type: 'presence', channel: 'private.watched', members: [{ session: a.sessionId, user: 'alice' }], truncated: false });
    });

    test('an anonymous member is listed with user null; a member who left is not', async () => {
      const a = await connect();
      const b = await connect();
      await a.subscribe('lobby');
      await b.subscribe('lobby');
      b.send({ type: 'unsubscribe', channel: 'lobby' });
      await b.nextOf('unsubscribed');
      a.send({ type: 'presence', channel: 'lobby' });
      assert.deepEqual(await a.nextOf('presence'), { type: 'presence', channel: 'lobby', members: [{ session: a.sessionId, user: null }], truncated: false });
    });

    test('--presence-max: exactly the limit is not truncated, one more is cut to the limit', async () => {
      const members = await Promise.all([connect(), connect(), connect()]);
      for (const m of members) await m.subscribe('edge');
      members[0]!.send({ type: 'presence', channel: 'edge' });
      const full = await members[0]!.nextOf('presence');
      assert.equal(full.members.length, 3);
      assert.equal(full.truncated, false);
      const fourth = await connect();
      await fourth.subscribe('edge');
      fourth.send({ type: 'presence', channel: 'edge' });
      const cut = await fourth.nextOf('presence');
      assert.equal(cut.members.length, 3);
      assert.equal(cut.truncated, true);
      const all = new Set([...members, fourth].map((m) => m.sessionId));
      for (const m of cut.members) assert.ok(all.has(m.session));
    });

    test('an invalid channel is answered with invalid channel', async () => {
      const a = await connect();
      a.send({ type: 'presence', channel: 'bad channel' });
      assert.deepEqual(await a.nextOf('error'), { type: 'error', channel: 'bad channel', errors: ['invalid channel'] });
    });
  });
}

describe('GET /api/presence', () => {
  let srv: TestServer;
  const open: TestClient[] = [];
  before(async () => {
    srv = await startServer({ 'presence-max': '2' });
  });
  after(async () => {
    for (const c of open) c.ws.terminate();
    await srv.stop();
  });
  const get = (query: string, token?: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${srv.port}/api/presence${query}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  test('publish and admin grants get the members; the limit cuts and says truncated', async () => {
    const a = await TestClient.connect(srv.port, { token: await makeToken('alice', ['private']) });
    const b = await TestClient.connect(srv.port, { protocol: 'bin', token: await makeToken('bob', ['private']) });
    open.push(a, b);
    await a.subscribe('private.api');
    await b.subscribe('private.api');
    for (const grant of ['publish', 'admin']) {
      const res = await get('?channel=private.api', await makeToken('backend', [grant]));
      assert.equal(res.status, 200);
      const body = (await res.json()) as { channel: string; members: MemberInfo[]; truncated: boolean };
      assert.equal(body.channel, 'private.api');
      assert.equal(body.truncated, false);
      assert.deepEqual(body.members.sort(bySession), [{ session: a.sessionId, user: 'alice' }, { session: b.sessionId, user: 'bob' }].sort(bySession));
    }
    const c = await TestClient.connect(srv.port, { token: await makeToken('carol', ['private']) });
    open.push(c);
    await c.subscribe('private.api');
    const res = await get('?channel=private.api', await makeToken('backend', ['publish']));
    const body = (await res.json()) as { members: MemberInfo[]; truncated: boolean };
    assert.equal(body.members.length, 2);
    assert.equal(body.truncated, true);
  });

  test('an empty channel has no members', async () => {
    const res = await get('?channel=nobody-here', await makeToken('backend', ['admin']));
    assert.deepEqual(await res.json(), { channel: 'nobody-here', members: [], truncated: false });
  });

  test('401 without a token, 403 without publish or admin, 400 without a valid channel', async () => {
    assert.equal((await get('?channel=x')).status, 401);
    const forbidden = await get('?channel=x', await makeToken('u', ['private', 'audit', 'broadcast']));
    assert.equal(forbidden.status, 403);
    assert.equal(((await forbidden.json()) as { code: string }).code, 'ERR_AUTH_FORBIDDEN');
    const token = await makeToken('backend', ['publish']);
    assert.equal((await get('', token)).status, 400);
    assert.equal((await get('?channel=bad%20channel', token)).status, 400);
    assert.equal((await get('?channel=*', token)).status, 400);
  });
});
