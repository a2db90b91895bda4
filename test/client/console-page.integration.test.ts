/**
 * The demo console (public/) in headless Chromium: it is built on /zenconn/client.js and
 * connects, subscribes, receives and broadcasts, in both protocols, without console errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect, type ChannelEvent } from '../../src/client/index.js';
import { launchBrowser, collectPageErrors } from '../helpers/browser.js';
import { ROOT } from '../helpers/process.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { NodeWebSocket, startServe, writeClientBundle } from './client-helpers.js';

for (const protocol of ['json', 'bin'] as const) {
  test(`${protocol}: the console connects, subscribes, shows an event and broadcasts through the client library`, async () => {
    await writeClientBundle();
    const { zen } = await startServe(['--public', join(ROOT, 'public')]);
    const browser = await launchBrowser();
    const peer = connect(`ws://127.0.0.1:${zen.port}/`, { WebSocket: NodeWebSocket, token: await makeToken('peer', ['publish']) });
    try {
      const page = await browser.newPage();
      const errors = collectPageErrors(page);
      await page.goto(`http://127.0.0.1:${zen.port}/`);
      await page.selectOption('#protocol', protocol);
      await page.click('#connect');
      await waitFor('the console connected', async () => (await page.textContent('#status')) === `connected (${protocol})`);
      await page.fill('#channel', 'news');
      await page.click('#subscribe');
      await waitFor('← subscribed news', async () => ((await page.textContent('#log')) ?? '').includes('← subscribed news'));

      const got: ChannelEvent[] = [];
      peer.subscribe('news', (e) => got.push(e));
      await waitFor('the peer subscribed', () => peer.getSubscription('news')?.state === 'subscribed');
      assert.equal((await peer.broadcast('news', { text: 'to the console' })).count, 1);
      await waitFor('to the console', async () => ((await page.textContent('#log')) ?? '').includes('to the console'));

      await page.fill('#data', '{"text":"from the console"}');
      await page.click('#broadcast');
      await waitFor('the console\'s event at the peer', () => got.length === 1);
      assert.deepEqual(got[0]!.data, { text: 'from the console' });
      await waitFor('← received news count 1', async () => ((await page.textContent('#log')) ?? '').includes('← received news count 1'));
      assert.deepEqual(errors, []);
    } finally {
      peer.close();
      await browser.close();
      await zen.stop();
    }
  });
}
