/**
 * Issue #13 §6.3: an agent with two workers; the worker that holds the subscriber is
 * killed (SIGKILL) in the middle of a stream. The client library reconnects (to the
 * surviving worker or the replacement), resubscribes from its last offset and ends with
 * the complete sequence, once each and in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ChannelEvent } from '../../src/client/index.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { startAgent } from '../cluster/cluster-helpers.js';
import { NodeWebSocket, range } from './client-helpers.js';

test('kill -9 of the worker holding the subscriber mid-stream: the client reconnects and gets the complete sequence', async () => {
  const agent = await startAgent(['--workers', '2', '--server-heartbeat-ms', '200']);
  const url = `ws://127.0.0.1:${agent.port}/`;
  const subscriber = connect(url, { WebSocket: NodeWebSocket, backoff: { baseMs: 50, capMs: 300 } });
  const publisherToken = await makeToken('publisher', ['publish']); // publish: no subscription needed, no rate limit
  let publisher: ReturnType<typeof connect> | undefined;
  let stop = false;
  try {
    const got: ChannelEvent[] = [];
    const unrecovered: unknown[] = [];
    const sub = subscriber.subscribe('stream', (e) => got.push(e));
    sub.on('unrecovered', (u) => unrecovered.push(u));
    await waitFor('the subscription', () => sub.state === 'subscribed');
    // Connected once the subscriber's session is placed, so the two land on different workers.
    publisher = connect(url, { protocol: 'bin', token: publisherToken, WebSocket: NodeWebSocket });
    await publisher.ready();

    // The publisher must survive the kill.
    let sessions = await agent.sessions();
    await waitFor('the agent to list both sessions', async () => {
      sessions = await agent.sessions();
      return [subscriber.session, publisher!.session].every((id) => sessions.some((s) => s.id === id));
    });
    const pidOf = (id: string | null): number | undefined => sessions.find((s) => s.id === id)?.pid;
    const victim = pidOf(subscriber.session);
    assert.ok(victim, 'the subscriber has a worker');
    assert.notEqual(pidOf(publisher.session), victim, 'the publisher is on the other worker');

    // The stream: 300 events, one after another (each answered before the next).
    const TOTAL = 300;
    let sent = 0;
    const pump = (async () => {
      while (sent < TOTAL && !stop) {
        await publisher!.broadcast('stream', sent);
        sent++;
      }
    })();
    await waitFor('the stream to be under way', () => got.length >= 50);
    process.kill(victim, 'SIGKILL');
    const sentAtKill = sent;
    await waitFor('the subscriber to notice', () => subscriber.state !== 'connected');
    await pump;
    assert.ok(sentAtKill < TOTAL, 'the kill happened mid-stream');
    await waitFor('the complete sequence', () => got.length >= TOTAL, 30_000);

    assert.deepEqual(got.map((e) => e.data), range(0, TOTAL), 'every event once, in order');
    assert.deepEqual(unrecovered, []);
    assert.ok(subscriber.reconnects >= 1);
    const now = await agent.sessions();
    assert.notEqual(now.find((s) => s.id === subscriber.session)?.pid, victim, 'served by another worker now');
  } finally {
    stop = true;
    subscriber.close();
    publisher?.close();
    await agent.cleanup();
  }
});
