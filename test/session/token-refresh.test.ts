/** A session lives no longer than its token: `refresh`, `refreshed`, and close code 4001 (real sockets). */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { allRows } from '../audit/helpers.js';
import type { ProtocolName } from '../../src/protocol/codec.js';
import { CloseCode } from '../../src/errors.js';
import { TokenVerifier } from '../../src/auth/tokens.js';

const PROTOCOLS: ProtocolName[] = ['json', 'bin'];
const nowSec = () => Math.floor(Date.now() / 1000);

/** Connects and keeps the close reason, which TestClient does not. */
async function connect(port: number, protocol: ProtocolName, token?: string): Promise<TestClient & { closeReason?: string }> {
  const c: TestClient & { closeReason?: string } = await TestClient.connect(port, token === undefined ? { protocol } : { protocol, token });
  c.ws.once('close', (_code, reason) => {
    c.closeReason = reason.toString();
  });
  return c;
}

/** One round trip that needs an open session: subscribe to a fresh channel. */
async function roundTrip(c: TestClient, channel: string): Promise<void> {
  assert.deepEqual(await c.subscribe(channel), { type: 'subscribed', channel });
}

describe('refreshing a session token', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  for (const protocol of PROTOCOLS) {
    test(`${protocol}: a good refresh takes the new grants at once and answers refreshed with the new exp`, async () => {
      const a = await connect(srv.port, protocol, await makeToken('alice', []));
      const b = await connect(srv.port, protocol);
      a.send({ type: 'broadcast', channel: '*', data: 'before' });
      assert.deepEqual(await a.nextOf('error'), { type: 'error', channel: '*', errors: ['forbidden'] });

      const exp = nowSec() + 3600;
      const token = await makeToken('alice', ['broadcast'], { exp });
      // Pipelined: the broadcast sent right after the refresh already runs with its grants.
      a.send({ type: 'refresh', token });
      a.send({ type: 'broadcast', channel: '*', data: 'after' });
      assert.deepEqual(await a.next(), { type: 'refreshed', exp });
      assert.equal((await a.nextOf('received')).channel, '*');
      assert.equal((await b.nextOf('event')).data, 'after');

      // The audit trail marks the refresh but never holds the token.
      await srv.node.audit.flush(2000);
      const rows = await allRows(srv.node.store, { sessionId: a.sessionId });
      const refreshRow = rows.find((r) => r.type === 'refresh');
      assert.ok(refreshRow, 'a refresh row');
      assert.deepEqual(JSON.parse(refreshRow.payload!), { token: '***' });
      const refreshed = rows.find((r) => r.type === 'refreshed');
      assert.deepEqual(JSON.parse(refreshed!.payload!), { exp, grants: ['broadcast'] });
      for (const r of rows) assert.ok(!(r.payload ?? '').includes(token.slice(-20)), `row ${r.type} holds the token`);
      a.ws.terminate();
      b.ws.terminate();
    });

    test(`${protocol}: a refused refresh gets an error frame and the session keeps its old token`, async () => {
      const a = await connect(srv.port, protocol, await makeToken('alice', ['broadcast']));
      const refusals: Array<[string, string]> = [
        [await makeToken('bob', ['broadcast', 'publish']), 'token for another user'],
        [await makeToken('alice', [], { secret: 'not-the-server-secret-0123456789abcdef' }), 'token rejected'],
        [await makeToken('alice', [], { exp: nowSec() - 3600 }), 'token expired'],
        ['not.a.jwt', 'token rejected']
      ];
      for (const [token, reason] of refusals) {
        a.send({ type: 'refresh', token });
        assert.deepEqual(await a.next(), { type: 'error', channel: '*', errors: [reason] }, reason);
        // Still alice with `broadcast`: the refused token changed nothing.
        a.send({ type: 'broadcast', channel: '*', data: 1 });
        assert.equal((await a.next()).type, 'received', reason);
      }
      a.send({ type: 'refresh', token: '' } as never);
      assert.deepEqual(await a.next(), { type: 'error', channel: '*', errors: ['invalid token'] });
      assert.equal(a.closeCode, null);

      const anon = await connect(srv.port, protocol);
      anon.send({ type: 'refresh', token: await makeToken('alice', ['broadcast']) });
      assert.deepEqual(await anon.next(), { type: 'error', channel: '*', errors: ['anonymous session'] });
      a.ws.terminate();
      anon.ws.terminate();
    });
  }

  test('a session whose token expires is closed with 4001 token expired; one refreshed in time stays open', async () => {
    const tolerance = new TokenVerifier({ secret: null, publicKeyFile: null }).clockToleranceSec;
    const oldExp = nowSec() + 2;
    const old = await makeToken('alice', [], { exp: oldExp });
    const fresh = await makeToken('alice', [], { exp: nowSec() + 3600 });
    const other = await makeToken('bob', [], { exp: nowSec() + 3600 });
    await Promise.all(
      PROTOCOLS.map(async (protocol) => {
        const idle = await connect(srv.port, protocol, old);
        const refused = await connect(srv.port, protocol, old);
        const refreshed = await connect(srv.port, protocol, old);
        refused.send({ type: 'refresh', token: other });
        assert.deepEqual(await refused.nextOf('error'), { type: 'error', channel: '*', errors: ['token for another user'] });
        refreshed.send({ type: 'refresh', token: fresh });
        assert.equal((await refreshed.nextOf('refreshed')).type, 'refreshed');

        // The state that proves the old token's deadline passed: the idle session was closed.
        await waitFor(`${protocol}: the idle session closed`, () => idle.closeCode !== null && refused.closeCode !== null, 20_000);
        assert.ok(Date.now() >= (oldExp + tolerance) * 1000, 'closed no earlier than exp + tolerance');
        for (const c of [idle, refused]) {
          assert.equal(c.closeCode, CloseCode.TOKEN_EXPIRED);
          assert.equal(c.closeReason, 'token expired');
        }
        await roundTrip(refreshed, `after-old-exp-${protocol}`);
        assert.equal(refreshed.closeCode, null);
        refreshed.ws.terminate();
      })
    );
  });

  test('a closed session leaves the expiry schedule', async () => {
    // The earlier tests' sessions were terminated: let their closes land first.
    await waitFor('the earlier sessions closed', () => srv.node.sessions.size === 0);
    const before = srv.node.sessions.expiringSessions;
    const token = await makeToken('alice', []);
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => connect(srv.port, PROTOCOLS[i % 2]!, token)));
    assert.equal(srv.node.sessions.expiringSessions, before + 20);
    await Promise.all(clients.slice(0, 10).map((c) => c.close()));
    for (const c of clients.slice(10)) c.ws.terminate();
    await waitFor('the 20 sessions left the schedule', () => srv.node.sessions.expiringSessions === before);
    // Anonymous sessions are never scheduled.
    const anon = await connect(srv.port, 'json');
    assert.equal(srv.node.sessions.expiringSessions, before);
    await anon.close();
  });
});
