import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { WebhookQueue, type WebhookQueueOptions } from '../../src/webhooks/webhook-queue.js';
import { webhookEventCodec, type WebhookEvent } from '../../src/webhooks/webhook-event.js';
import { parseWebhookTargets } from '../../src/config/webhook-targets.js';
import { loadConfig, parseArgv } from '../../src/config/load.js';
import { newId } from '../../src/protocol/ids.js';

function event(channel: string): WebhookEvent {
  return { id: newId(), name: 'channel_occupied', channel, session: newId(), user: null, time_ms: Date.now() };
}

function queue(dir: string, o: Partial<WebhookQueueOptions>): WebhookQueue {
  return new WebhookQueue({
    dir,
    target: { url: 'http://127.0.0.1:9/hook', events: new Set(['channel_occupied']) },
    secret: null,
    batchMax: 100,
    batchMs: 0,
    timeoutMs: 1000,
    retryMinMs: 5,
    retryMaxMs: 20,
    maxBytes: 1 << 20,
    ...o
  });
}

describe('webhook queue', () => {
  test('--webhook-max-queue-bytes: an event is queued while the files are under the bound, dropped at it; none is lost below it', async () => {
    const dir = tempDir();
    let up = false;
    const got: WebhookEvent[] = [];
    const a = event('a');
    const b = event('b');
    const size = Buffer.byteLength(webhookEventCodec.encode(a));
    assert.equal(size, Buffer.byteLength(webhookEventCodec.encode(b)));
    let attempts = 0;
    const q = queue(join(dir, 'q'), {
      // Two events fit: the second is pushed at size (< bound), the third at 2 × size (= bound).
      maxBytes: 2 * size,
      post: async (_url, events) => {
        attempts++;
        if (!up) throw new Error('down');
        got.push(...events);
      }
    });
    try {
      q.start();
      q.push(a);
      q.push(b);
      assert.equal(q.bytes, 2 * size);
      q.push(event('c'));
      assert.equal(q.dropped, 1);
      await waitFor('a failed attempt', () => attempts >= 1);
      up = true;
      assert.ok(await q.flush(5000));
      assert.deepEqual(got.map((e) => e.channel), ['a', 'b']);
      assert.deepEqual(got.map((e) => e.id), [a.id, b.id]);
      // Delivered: the file is gone and the queue takes events again.
      assert.equal(q.bytes, 0);
      q.push(event('d'));
      assert.equal(q.dropped, 1);
      assert.ok(await q.flush(5000));
      assert.deepEqual(got.map((e) => e.channel), ['a', 'b', 'd']);
    } finally {
      await q.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('what a closed queue did not send is sent by the next one on the same folder and URL', async () => {
    const dir = tempDir();
    const folder = join(dir, 'q');
    const first = queue(folder, { post: async () => Promise.reject(new Error('down')) });
    const got: WebhookEvent[] = [];
    const second = queue(folder, { post: async (_url, events) => void got.push(...events) });
    try {
      first.start();
      const sent = [event('x'), event('y'), event('z')];
      for (const e of sent) first.push(e);
      await waitFor('a failure', () => first.failures >= 1);
      await first.close();
      assert.equal(readdirSync(folder).length, 1);
      second.start();
      assert.ok(await second.flush(5000));
      assert.deepEqual(got.map((e) => e.id), sent.map((e) => e.id));
      assert.deepEqual(readdirSync(folder), []);
    } finally {
      await second.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('webhook configuration', () => {
  test('each URL gets --webhook-events unless it names its own after #', () => {
    const t = parseWebhookTargets(['http://a.example/h', 'https://b.example/h#session_opened+session_closed'], ['channel_occupied']);
    assert.deepEqual(t.map((x) => [x.url, [...x.events]]), [
      ['http://a.example/h', ['channel_occupied']],
      ['https://b.example/h', ['session_opened', 'session_closed']]
    ]);
  });

  test('bad URLs and unknown events stop the program with one line naming them', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ webhook: 'not a url' }, /--webhook: "not a url" is not a URL/],
      [{ webhook: 'ftp://x.example/' }, /expected an http:\/\/ or https:\/\/ URL/],
      [{ webhook: 'http://x.example/,http://x.example/' }, /is given twice/],
      [{ webhook: 'http://x.example/', 'webhook-events': 'channel_occupied,member_joined' }, /unknown webhook event "member_joined"/],
      [{ webhook: 'http://x.example/#nope' }, /unknown webhook event "nope"/],
      [{ 'webhook-batch-max': '0' }, /--webhook-batch-max: must be at least 1/],
      [{ 'webhook-max-queue-bytes': '0' }, /--webhook-max-queue-bytes: must be at least 1/]
    ];
    for (const [flags, re] of bad) assert.throws(() => loadConfig(new Map(Object.entries(flags)), {}), re);
    // A password in a URL is not printed.
    assert.throws(
      () => loadConfig(new Map([['webhook', 'ftp://u:hunter2@x.example/']]), {}),
      (err: Error) => err.message.includes('ftp://u:****@x.example/') && !err.message.includes('hunter2')
    );
    const ok = loadConfig(new Map(Object.entries({ webhook: 'http://x.example/a, http://y.example/b', 'webhook-batch-max': '1' })), {});
    assert.deepEqual(ok.webhook, ['http://x.example/a', 'http://y.example/b']);
    assert.equal(ok.webhookBatchMax, 1);
    // --webhook is repeatable (a list option given again adds to it); a plain option's last value wins.
    const argv = parseArgv(['serve', '--webhook', 'http://x.example/a', '--webhook=http://y.example/b#session_opened', '--port', '1', '--port', '2']);
    const both = loadConfig(argv.flags, {});
    assert.deepEqual(both.webhook, ['http://x.example/a', 'http://y.example/b#session_opened']);
    assert.equal(both.port, 2);
  });
});
