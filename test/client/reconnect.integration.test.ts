/**
 * Issue #13 §6.1: a subscriber is away for a while, through a TCP proxy that is cut,
 * while a publisher sends 200 events. On reconnect the client library resubscribes with
 * its last position and receives every event once, in order. Both protocols.
 * §6.2: the same with a hot window of 10 events, so the gap is filled from the audit
 * trail, on SQLite and on PostgreSQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ChannelEvent } from '../../src/client/index.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { withSchema, type TestSchema } from '../helpers/pg.js';
import { NodeWebSocket, range, recordStates, startServe } from './client-helpers.js';

interface Case {
  protocol: 'json' | 'bin';
  /** Where the gap comes from: the hot window (default size), or the audit trail behind a 10-event window. */
  from: 'window' | 'audit on SQLite' | 'audit on PostgreSQL';
}
const cases: Case[] = [
  { protocol: 'json', from: 'window' },
  { protocol: 'bin', from: 'window' },
  { protocol: 'json', from: 'audit on SQLite' },
  { protocol: 'bin', from: 'audit on PostgreSQL' }
];

for (const { protocol, from } of cases) {
  test(`${protocol}, from the ${from}: 200 events sent while the subscriber is cut off all arrive after the reconnect, once each and in order`, async () => {
    const schema: TestSchema | null = from === 'audit on PostgreSQL' ? await withSchema() : null;
    const args = from === 'window' ? [] : ['--history-size', '10', '--recovery-max', '1000'];
    if (schema !== null) args.push('--database', schema.url);
    const { zen } = await startServe(args);
    const proxy = await startTcpProxy({ port: zen.port });
    // publish: no subscription needed, no inbound rate limit; admin: may ask who is in the channel.
    const publisherToken = await makeToken('publisher', ['publish', 'admin']);
    const subscriber = connect(`ws://127.0.0.1:${proxy.port}/`, { protocol, WebSocket: NodeWebSocket, backoff: { baseMs: 50, capMs: 200 } });
    const publisher = connect(`ws://127.0.0.1:${zen.port}/`, { protocol, token: publisherToken, WebSocket: NodeWebSocket });
    try {
      const states = recordStates(subscriber);
      const got: ChannelEvent[] = [];
      const unrecovered: unknown[] = [];
      const sub = subscriber.subscribe('feed', (e) => got.push(e));
      sub.on('unrecovered', (u) => unrecovered.push(u));
      await waitFor('the subscription', () => sub.state === 'subscribed');
      await publisher.ready();

      // Before the outage: live events, each counted as delivered to the subscriber.
      for (const i of range(0, 20)) assert.equal((await publisher.broadcast('feed', i)).count, 1);
      await waitFor('the first 20 events', () => got.length === 20);

      proxy.cut('refuse');
      await waitFor('the subscriber to see the drop', () => subscriber.state === 'disconnected' || subscriber.state === 'connecting');
      // And the server: until it has closed that session, events would still be written to its dead socket.
      await waitFor('the server to drop the subscriber', async () => (await publisher.presence('feed')).members.length === 0);
      // Meanwhile: 200 events, which reach nobody live (count 0 proves the subscriber was away).
      const counts = await Promise.all(range(20, 200).map((i) => publisher.broadcast('feed', i)));
      assert.deepEqual(new Set(counts.map((c) => c.count)), new Set([0]));
      if (from !== 'window') {
        // The audit rows reach the database in batches: the gap can be filled once the
        // history from the last event the subscriber saw comes back complete.
        const last = got[got.length - 1]!;
        await waitFor('the missed events in the audit trail', async () => {
          const h = await publisher.history('feed', { since: { offset: last.offset!, epoch: last.epoch! }, limit: 1000 });
          return h.complete && h.events.length === 200;
        });
      }
      // It keeps trying while the proxy refuses (at least two failed attempts), then gets through.
      await waitFor('two refused reconnect attempts', () => states.filter((s) => s === 'connecting').length >= 3);
      proxy.restore();
      await waitFor('the subscriber to recover all 220 events', () => got.length >= 220, 20_000);
      // A few more after the recovery: the seam between replayed and live events.
      for (const i of range(220, 10)) await publisher.broadcast('feed', i);
      await waitFor('all 230 events', () => got.length >= 230);

      assert.deepEqual(got.map((e) => e.data), range(0, 230), 'every event once, in order');
      const offsets = got.map((e) => e.offset);
      assert.ok(offsets.every((o, i) => i === 0 || o === offsets[i - 1]! + 1), 'offsets without gaps');
      assert.equal(new Set(got.map((e) => e.epoch)).size, 1, 'one epoch');
      assert.deepEqual(unrecovered, []);
      assert.equal(subscriber.reconnects, 1);
      assert.ok(states.includes('disconnected'));
    } finally {
      subscriber.close();
      publisher.close();
      await proxy.close();
      await zen.stop();
      await schema?.drop();
    }
  });
}
