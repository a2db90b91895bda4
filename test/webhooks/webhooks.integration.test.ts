import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestClient } from '../helpers/client.js';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { tempDir, TEST_CHANNEL_SECRET, TEST_JWT_SECRET } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { signChannel } from '../../src/auth/channel-signature.js';
import { admin, httpGet, placement, startAgent } from '../cluster/cluster-helpers.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { Receiver } from './receiver.js';

describe('webhooks from real processes', () => {
  test('an agent with 2 workers: a channel with members on both is occupied once and vacated once; a private channel adds and removes each', async () => {
    const receiver = await Receiver.start();
    const agent = await startAgent(['--workers', '2', '--webhook', receiver.url]);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 6; i++) clients.push(await TestClient.connect(agent.port));
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.sessions === 3));
      for (const c of clients) await c.subscribe('room');
      for (const c of clients) assert.equal((await c.subscribe('private.p', signChannel(TEST_CHANNEL_SECRET, c.sessionId, 'private.p'))).type, 'subscribed');
      const pids = await placement(agent, clients);
      assert.equal(new Set(pids).size, 2, `members on both workers: ${pids.join(',')}`);
      await waitFor('6 member_added', () => receiver.events.filter((e) => e.name === 'member_added').length === 6);
      for (const c of clients) await c.close();
      await waitFor('2 channel_vacated', () => receiver.events.filter((e) => e.name === 'channel_vacated').length >= 2);
      await waitFor('6 member_removed', () => receiver.events.filter((e) => e.name === 'member_removed').length >= 6);
      const ev = receiver.events;
      const count = (name: string, channel: string): number => ev.filter((e) => e.name === name && e.channel === channel).length;
      assert.equal(count('channel_occupied', 'room'), 1);
      assert.equal(count('channel_vacated', 'room'), 1);
      assert.equal(count('channel_occupied', 'private.p'), 1);
      assert.equal(count('channel_vacated', 'private.p'), 1);
      assert.deepEqual(new Set(ev.filter((e) => e.name === 'member_added').map((e) => e.session)), new Set(clients.map((c) => c.sessionId)));
      assert.deepEqual(new Set(ev.filter((e) => e.name === 'member_removed').map((e) => e.session)), new Set(clients.map((c) => c.sessionId)));
      // The session events were not asked for.
      assert.equal(ev.filter((e) => e.name.startsWith('session_')).length, 0);
      // Vacated comes after the last removal.
      const lastRemoved = ev.map((e) => e.name).lastIndexOf('member_removed');
      assert.ok(ev.findIndex((e) => e.name === 'channel_vacated' && e.channel === 'private.p') > lastRemoved);
      // The agent's scrape counts them, as the agent's (it sends them), by receiver.
      await waitFor('the scrape to count every event delivered', async () => {
        const res = await httpGet(agent.port, '/metrics', { authorization: `Bearer ${await admin()}` });
        const m = parsePrometheus(res.body);
        return m.sum('zenconn_webhook_events_delivered_total', { worker: 'agent', url: receiver.url }) === receiver.events.length && m.find('zenconn_webhook_events_delivered_total').length === 1;
      });
    } finally {
      await agent.cleanup();
      await receiver.close();
    }
  });

  test('an agent whose worker dies: the agent says member_removed, channel_vacated and session_closed for its sessions', async () => {
    const receiver = await Receiver.start();
    const agent = await startAgent(['--workers', '2', '--webhook', receiver.url, '--webhook-events', 'channel_vacated,member_removed,session_closed']);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 4; i++) clients.push(await TestClient.connect(agent.port));
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.sessions === 2));
      const pids = await placement(agent, clients);
      const victim = pids[0]!;
      const lost = clients.filter((_, i) => pids[i] === victim);
      const kept = clients.filter((_, i) => pids[i] !== victim);
      assert.equal(lost.length, 2);
      // `alone` only on the victim; `shared` on both workers; `private.q` on the victim.
      for (const c of lost) {
        await c.subscribe('alone');
        await c.subscribe('shared');
        await c.subscribe('private.q', signChannel(TEST_CHANNEL_SECRET, c.sessionId, 'private.q'));
      }
      for (const c of kept) await c.subscribe('shared');
      await agent.waitWorkers((w) => w.length === 2);
      process.kill(victim, 'SIGKILL');
      for (const c of lost) await c.closed();
      await waitFor('the lost sessions closed', () => receiver.events.filter((e) => e.name === 'session_closed').length === 2);
      const ev = receiver.events;
      assert.deepEqual(new Set(ev.filter((e) => e.name === 'session_closed').map((e) => e.session)), new Set(lost.map((c) => c.sessionId)));
      assert.deepEqual(new Set(ev.filter((e) => e.name === 'member_removed').map((e) => e.session)), new Set(lost.map((c) => c.sessionId)));
      assert.deepEqual(ev.filter((e) => e.name === 'channel_vacated').map((e) => e.channel).sort(), ['alone', 'private.q']);
    } finally {
      for (const c of clients) c.ws.terminate();
      await agent.cleanup();
      await receiver.close();
    }
  });

  test('an agent with --workers 0 sends its own sessions\' events (and still lists them in /agent/sessions)', async () => {
    const receiver = await Receiver.start();
    const agent = await startAgent(['--workers', '0', '--webhook', receiver.url]);
    try {
      const c = await TestClient.connect(agent.port);
      await c.subscribe('solo');
      await waitFor('channel_occupied', () => receiver.events.some((e) => e.name === 'channel_occupied' && e.channel === 'solo'));
      assert.equal((await agent.sessions('?channel=solo')).length, 1);
      await c.close();
      await waitFor('channel_vacated', () => receiver.events.some((e) => e.name === 'channel_vacated' && e.channel === 'solo'));
      assert.deepEqual(receiver.events.map((e) => e.session), [c.sessionId, c.sessionId]);
    } finally {
      await agent.cleanup();
      await receiver.close();
    }
  });

  test('serve killed with SIGKILL while its receiver is down: the queued events are delivered after the restart', async () => {
    const receiver = await Receiver.start('503');
    const dir = tempDir('zenconn-webhooks-');
    const args = [
      'serve',
      '--port', '0',
      '--host', '127.0.0.1',
      '--public', 'off',
      '--access-log', 'off',
      '--database', `sqlite:${join(dir, 'z.db')}`,
      '--spool-dir', join(dir, 'spool'),
      '--audit-journal-dir', join(dir, 'journal'),
      '--jwt-secret', TEST_JWT_SECRET,
      '--log-level', 'error',
      '--webhook', receiver.url,
      '--webhook-events', 'channel_occupied,session_opened',
      '--webhook-retry-max-ms', '200'
    ];
    let zen: ZenProcess | null = await startZen(args);
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await TestClient.connect(zen.port);
        clients.push(c);
        await c.subscribe(`k${i}`);
      }
      // Six events (3 opened, 3 occupied), every one of them tried and refused.
      const tried = (): Set<string> => new Set(receiver.posts.flatMap((p) => p.events.map((e) => e.id)));
      await waitFor('all 6 events tried', () => tried().size === 6);
      const ids = tried();
      assert.equal(receiver.events.length, 0);
      zen.child.kill('SIGKILL');
      await zen.exited;
      for (const c of clients) await c.closed();
      assert.ok(readdirSync(join(dir, 'spool', 'webhooks')).length >= 1);
      await receiver.setMode('ok');
      zen = await startZen(args);
      await waitFor('the 6 events after the restart', () => receiver.unique.length >= 6);
      assert.deepEqual(new Set(receiver.unique.map((e) => e.id)), ids);
      assert.deepEqual(
        receiver.unique.map((e) => `${e.name} ${e.channel ?? '-'}`),
        ['session_opened -', 'channel_occupied k0', 'session_opened -', 'channel_occupied k1', 'session_opened -', 'channel_occupied k2']
      );
      await waitFor('the claimed file to be deleted', () => readdirSync(join(dir, 'spool', 'webhooks')).length === 0);
    } finally {
      if (zen !== null && zen.child.exitCode === null && zen.child.signalCode === null) await zen.stop('SIGKILL');
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
