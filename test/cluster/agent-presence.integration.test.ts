import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import type { MemberInfo } from '../../src/protocol/frames.js';
import { placement, startAgent } from './cluster-helpers.js';

/** Asks `c` for the presence of `channel`: its members (session ids, sorted) and `truncated`. */
async function presence(c: TestClient, channel: string): Promise<{ sessions: string[]; users: Map<string, string | null>; truncated: boolean }> {
  c.send({ type: 'presence', channel });
  const p = await c.nextOf('presence');
  return { sessions: p.members.map((m) => m.session).sort(), users: new Map(p.members.map((m) => [m.session, m.user])), truncated: p.truncated };
}

describe('presence under an agent with two workers', () => {
  test('members on both workers are listed, on private and public channels, by socket and HTTP; --presence-max cuts; a member who leaves is dropped', async () => {
    const agent = await startAgent(['--workers', '2', '--presence-max', '4']);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 4; i++) clients.push(await TestClient.connect(agent.port, { protocol: i % 2 === 0 ? 'json' : 'bin', token: await makeToken(`user${i}`, ['private']) }));
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.sessions === 2), 5000);
      assert.equal(new Set(await placement(agent, clients)).size, 2, 'the members are on both workers');
      for (const c of clients) {
        assert.equal((await c.subscribe('private.team')).type, 'subscribed');
        assert.equal((await c.subscribe('lobby')).type, 'subscribed');
      }
      const all = clients.map((c) => c.sessionId).sort();
      // Every member asks, from either worker: everyone is listed (the registry is fed within a turn; poll for it).
      for (const channel of ['private.team', 'lobby']) {
        for (const c of clients) {
          await waitFor(`${channel} listed in full from ${c.sessionId}`, async () => {
            const p = await presence(c, channel);
            return p.sessions.length === 4 && p.sessions.every((s, i) => s === all[i]) && !p.truncated;
          });
        }
      }
      const p = await presence(clients[1]!, 'private.team');
      for (const [i, c] of clients.entries()) assert.equal(p.users.get(c.sessionId), `user${i}`);

      // A fifth member, on either worker: cut to 4, truncated.
      const fifth = await TestClient.connect(agent.port, { token: await makeToken('user4', ['private']) });
      clients.push(fifth);
      await fifth.subscribe('private.team');
      await waitFor('truncated at --presence-max 4', async () => {
        const q = await presence(fifth, 'private.team');
        return q.sessions.length === 4 && q.truncated;
      });

      // The HTTP API, through whichever worker takes the request.
      const res = await fetch(`http://127.0.0.1:${agent.port}/api/presence?channel=lobby`, { headers: { authorization: `Bearer ${await makeToken('app', ['publish'])}` } });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { channel: string; members: MemberInfo[]; truncated: boolean };
      assert.deepEqual(body.members.map((m) => m.session).sort(), all);
      assert.equal(body.truncated, false);

      // An outsider on either worker is refused; an admin is not.
      const outsider = await TestClient.connect(agent.port, { token: await makeToken('eve', ['private']) });
      clients.push(outsider);
      outsider.send({ type: 'presence', channel: 'private.team' });
      assert.deepEqual(await outsider.nextOf('error'), { type: 'error', channel: 'private.team', errors: ['not subscribed'] });
      const admin = await TestClient.connect(agent.port, { token: await makeToken('root', ['admin']) });
      clients.push(admin);
      assert.equal((await presence(admin, 'lobby')).sessions.length, 4);

      // Members who close or unsubscribe are dropped from the list.
      await clients[0]!.close();
      clients[1]!.send({ type: 'unsubscribe', channel: 'lobby' });
      await clients[1]!.nextOf('unsubscribed');
      const left = [clients[2]!.sessionId, clients[3]!.sessionId].sort();
      await waitFor('the lobby without the two who left', async () => {
        const q = await presence(admin, 'lobby');
        return q.sessions.length === 2 && q.sessions.every((s, i) => s === left[i]);
      });
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
    }
  });
});
