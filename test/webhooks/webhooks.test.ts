import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { TestClient } from '../helpers/client.js';
import { startServer, TEST_CHANNEL_SECRET, type TestServer } from '../helpers/server.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { ROOT } from '../helpers/process.js';
import { signChannel } from '../../src/auth/channel-signature.js';
import { verifyWebhook, signWebhook } from '../../src/webhooks/webhook-signature.js';
import { WEBHOOK_EVENT_NAMES } from '../../src/config/webhook-targets.js';
import { Receiver, type ReceivedEvent } from './receiver.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const SECRET = 'whsec-test-0123456789';
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The verify snippet of docs/operations.md ("Webhooks"), run as it is printed there. */
function documentedVerifier(): (secret: string, rawBody: string, header: string) => boolean {
  const ops = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
  const m = /<!-- webhook-verify -->\s*```js\n([\s\S]*?)```/.exec(ops);
  assert.ok(m, 'docs/operations.md has the webhook verify snippet');
  const make = new Function('require', `${m[1]!}\nreturn verifyZenconnSignature;`) as (r: NodeRequire) => (s: string, b: string, h: string) => boolean;
  return make(createRequire(import.meta.url));
}

function names(events: ReceivedEvent[]): string[] {
  return events.map((e) => `${e.name} ${e.channel ?? '-'} ${e.session.slice(-4)}`);
}

async function unsubscribe(c: TestClient, channel: string): Promise<void> {
  c.send({ type: 'unsubscribe', channel });
  await c.next((f) => f.type === 'unsubscribed' && f.channel === channel);
}

describe('webhooks on serve', () => {
  test('occupied, member_added, member_removed, vacated and the session events arrive, signed, in order', async () => {
    const receiver = await Receiver.start();
    let server: TestServer | null = null;
    try {
      server = await startServer({ webhook: receiver.url, 'webhook-events': WEBHOOK_EVENT_NAMES.join(','), 'webhook-secret': SECRET });
      const a = await TestClient.connect(server.port, { token: await makeToken('alice') });
      const b = await TestClient.connect(server.port);
      await a.subscribe('room');
      await waitFor('channel_occupied of room', () => receiver.events.some((e) => e.name === 'channel_occupied' && e.channel === 'room'));
      await b.subscribe('room');
      assert.equal((await a.subscribe('private.x', signChannel(TEST_CHANNEL_SECRET, a.sessionId, 'private.x'))).type, 'subscribed');
      assert.equal((await b.subscribe('private.x', signChannel(TEST_CHANNEL_SECRET, b.sessionId, 'private.x'))).type, 'subscribed');
      await unsubscribe(a, 'room');
      await a.close();
      await b.close();
      await waitFor('both session_closed', () => receiver.events.filter((e) => e.name === 'session_closed').length === 2);
      const A = a.sessionId.slice(-4);
      const B = b.sessionId.slice(-4);
      assert.deepEqual(names(receiver.events), [
        `session_opened - ${A}`,
        `session_opened - ${B}`,
        `channel_occupied room ${A}`,
        `channel_occupied private.x ${A}`,
        `member_added private.x ${A}`,
        `member_added private.x ${B}`,
        `member_removed private.x ${A}`,
        `session_closed - ${A}`,
        `channel_vacated room ${B}`,
        `member_removed private.x ${B}`,
        `channel_vacated private.x ${B}`,
        `session_closed - ${B}`
      ]);
      const events = receiver.events;
      assert.deepEqual(new Set(events.filter((e) => e.session === a.sessionId).map((e) => e.user)), new Set(['alice']));
      assert.deepEqual(new Set(events.filter((e) => e.session === b.sessionId).map((e) => e.user)), new Set([null]));
      for (const e of events) assert.match(e.id, UUID_V7);
      assert.equal(new Set(events.map((e) => e.id)).size, events.length);

      // Every POST verifies, with the code and with the snippet of the docs; a changed body or an old timestamp does not.
      const snippet = documentedVerifier();
      for (const p of receiver.posts) {
        const header = p.headers['x-zenconn-signature'];
        assert.equal(typeof header, 'string');
        assert.match(header as string, /^t=\d+,v1=[0-9a-f]{64}$/);
        assert.ok(verifyWebhook(SECRET, p.body, header as string));
        assert.ok(snippet(SECRET, p.body, header as string));
        assert.ok(!snippet(SECRET, p.body + ' ', header as string));
        assert.ok(!snippet('another secret', p.body, header as string));
        const body = JSON.parse(p.body) as { time_ms: number; events: unknown[] };
        assert.equal(typeof body.time_ms, 'number');
        assert.ok(body.events.length >= 1);
      }
      const old = Math.floor(Date.now() / 1000) - 301;
      assert.ok(!snippet(SECRET, '{}', signWebhook(SECRET, '{}', old)));
      assert.ok(snippet(SECRET, '{}', signWebhook(SECRET, '{}', old + 2)));
    } finally {
      await server?.stop();
      await receiver.close();
    }
  });

  test('a receiver that refuses connections, then answers 503, then is back: every event arrives, once each, in order', async () => {
    const receiver = await Receiver.start('refuse');
    let server: TestServer | null = null;
    const clients: TestClient[] = [];
    try {
      server = await startServer({ webhook: receiver.url, 'webhook-retry-max-ms': '200' });
      const queue = server.node.webhooks!.queues[0]!;
      for (let i = 0; i < 3; i++) {
        const c = await TestClient.connect(server.port);
        clients.push(c);
        await c.subscribe(`c${i}`);
      }
      await waitFor('3 failed attempts while refused', () => queue.failures >= 3);
      await receiver.setMode('503');
      await waitFor('2 POSTs answered 503', () => receiver.failed >= 2);
      assert.equal(receiver.events.length, 0);
      await receiver.setMode('ok');
      await waitFor('the queued events', () => receiver.events.length >= 3);
      assert.deepEqual(names(receiver.events), clients.map((c, i) => `channel_occupied c${i} ${c.sessionId.slice(-4)}`));
      await waitFor('the queue to be empty', () => queue.empty);
      assert.equal(queue.delivered, 3);
      assert.equal(queue.dropped, 0);
      // The scrape tells the same, by receiver.
      const m = parsePrometheus((await server.node.scrape()).body);
      assert.equal(m.sum('zenconn_webhook_events_delivered_total', { url: receiver.url }), 3);
      assert.equal(m.sum('zenconn_webhook_post_failures_total', { url: receiver.url }), queue.failures);
      assert.ok(queue.failures >= 5);
      assert.equal(m.sum('zenconn_webhook_events_dropped_total', { url: receiver.url }), 0);
      assert.equal(m.types.get('zenconn_webhook_queue_bytes'), 'gauge');
      assert.equal(m.find('zenconn_webhook_queue_bytes', { url: receiver.url }).length, 1);
    } finally {
      for (const c of clients) await c.close();
      await server?.stop();
      await receiver.close();
    }
  });

  test('--webhook-batch-max bounds a POST: 7 queued events go as 3 + 3 + 1', async () => {
    const receiver = await Receiver.start('503');
    let server: TestServer | null = null;
    let c: TestClient | null = null;
    try {
      server = await startServer({ webhook: receiver.url, 'webhook-batch-max': '3', 'webhook-retry-max-ms': '200' });
      c = await TestClient.connect(server.port);
      for (let i = 0; i < 7; i++) await c.subscribe(`b${i}`);
      await waitFor('a failed attempt holding 3', () => receiver.posts.some((p) => p.events.length === 3));
      await receiver.setMode('ok');
      await waitFor('all 7', () => receiver.events.length >= 7);
      assert.deepEqual(receiver.events.map((e) => e.channel), ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6']);
      for (const p of receiver.posts) assert.ok(p.events.length <= 3, `a POST of ${p.events.length}`);
      assert.deepEqual(receiver.posts.filter((p) => p.status === 200).map((p) => p.events.length), [3, 3, 1]);
    } finally {
      await c?.close();
      await server?.stop();
      await receiver.close();
    }
  });
});
