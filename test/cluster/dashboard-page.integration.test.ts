import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchBrowser, collectPageErrors } from '../helpers/browser.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { CloseCode } from '../../src/errors.js';
import { startAgent } from './cluster-helpers.js';
import { broadcast, opsToken, startServe } from './admin-helpers.js';

/** The raw number a summary card shows (its `data-value`). */
async function card(page: Page, id: string): Promise<number> {
  return Number(await page.locator(`#${id}`).getAttribute('data-value'));
}

/** Waits until the card `id` shows at least `min`. */
async function cardAtLeast(page: Page, id: string, min: number): Promise<void> {
  await waitFor(`#${id} to reach ${min}`, async () => (await card(page, id)) >= min, 15000, 50);
}

/** The row keys (session ids, audit row ids) of a table's body. */
async function rowKeys(page: Page, table: string): Promise<string[]> {
  return page.locator(`#${table} tbody tr[data-key]`).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key') ?? ''));
}

/**
 * The whole tour: sign in, the two sessions appear, a broadcast moves the counters, a
 * session is closed from the page, the audit trail is paged through, no console errors.
 */
async function tour(port: number, dir: string, workers: number): Promise<void> {
  const alice = await TestClient.connect(port, { token: await makeToken('alice') });
  const bob = await TestClient.connect(port, { token: await makeToken('bob') });
  const browser = await launchBrowser();
  try {
    await alice.subscribe('news');
    await bob.subscribe('news');
    // A token without the admin grant is refused on the sign-in form (in a page of its
    // own: Chromium logs the 403 as a console error).
    const refused = await browser.newPage();
    const refusedErrors = collectPageErrors(refused);
    await refused.goto(`http://127.0.0.1:${port}/admin/`);
    await refused.locator('#token').fill(await makeToken('mallory', ['audit']));
    await refused.locator('#sign-in-form button[type=submit]').click();
    await refused.locator('#sign-in-error', { hasText: 'no admin grant' }).waitFor();
    assert.equal(await refused.locator('#dashboard').isHidden(), true);
    assert.equal(await refused.evaluate('sessionStorage.length'), 0, 'a refused token is not kept');
    assert.ok(refusedErrors.every((e) => /status of 403/.test(e)), refusedErrors.join('\n'));
    await refused.close();

    const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
    const errors = collectPageErrors(page);
    await page.goto(`http://127.0.0.1:${port}/admin/`);

    // Sign in.
    await page.locator('#token').fill(await opsToken());
    await page.locator('#sign-in-form button[type=submit]').click();
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#whoami').textContent(), 'signed in as ops');

    // The two sessions appear, and the workers.
    await page.locator(`#sessions tr[data-key="${alice.sessionId}"]`).waitFor();
    await page.locator(`#sessions tr[data-key="${bob.sessionId}"]`).waitFor();
    await page.locator('#channels tr[data-key="news"]', { hasText: '2' }).waitFor();
    await waitFor(`${workers} workers`, async () => (await rowKeys(page, 'workers')).length === workers, 10000, 50);
    await cardAtLeast(page, 'sum-sessions', 2);
    assert.equal((await rowKeys(page, 'nodes')).length, 1, 'this node, from the servers table');

    // A broadcast moves the counters.
    await cardAtLeast(page, 'sum-opened', 2);
    const out = await card(page, 'sum-out');
    assert.equal(await broadcast(port, 'news', { hello: 'dashboard' }), 2);
    await cardAtLeast(page, 'sum-out', out + 2);
    // The deliveries line of the chart rises off its baseline (y 158 in the SVG's box).
    await waitFor('the deliveries chart to rise', async () => {
      const d = (await page.locator('#chart-messages svg path.line.s2').getAttribute('d', { timeout: 500 }).catch(() => null)) ?? '';
      return [...d.matchAll(/,([\d.]+)/g)].some((m) => Number(m[1]) < 158);
    }, 15000, 50);
    await page.screenshot({ path: join(dir, 'dashboard-signed-in.png'), fullPage: true });

    // The search narrows the sessions by user.
    await page.locator('#session-search').fill('alice');
    await waitFor('only alice', async () => (await rowKeys(page, 'sessions')).join() === alice.sessionId, 10000, 50);
    await page.locator('#session-search').fill('');

    // A session is closed from the page: the client sees 4002 and the row goes.
    await page.locator(`#sessions tr[data-key="${bob.sessionId}"] button.close-session`).click();
    assert.equal(await bob.closed(), CloseCode.CLOSED_BY_OPERATOR);
    await page.locator(`#sessions tr[data-key="${bob.sessionId}"]`).waitFor({ state: 'detached' });
    await page.locator(`#sessions tr[data-key="${alice.sessionId}"]`).waitFor();
    await cardAtLeast(page, 'sum-closed', 1);
    assert.equal(alice.closeCode, null);

    // The audit trail, three rows a page: the next page shows other rows.
    await page.locator('#audit-form input[name=limit]').fill('3');
    await page.locator('#audit-form button[type=submit]').click();
    await waitFor('a page of three audit rows', async () => (await rowKeys(page, 'audit')).length === 3, 10000, 50);
    await page.locator('#audit-next:not([disabled])').waitFor();
    const first = await rowKeys(page, 'audit');
    await page.locator('#audit-next').click();
    await page.locator('#audit-page', { hasText: 'page 2' }).waitFor();
    const second = await rowKeys(page, 'audit');
    assert.equal(second.length, 3, 'page 2 is full (the test made more than six rows)');
    assert.deepEqual(second.filter((k) => first.includes(k)), [], 'page 2 shows other rows');
    // A filter of `zenconn audit`: only bob's session.
    await page.locator('#audit-form input[name=user]').fill('bob');
    await page.locator('#audit-form button[type=submit]').click();
    await page.locator('#audit-page', { hasText: 'page 1' }).waitFor();
    const users = (): Promise<string[]> => page.locator('#audit tbody tr[data-key] td:nth-child(6)').allTextContents();
    await waitFor("only bob's audit rows", async () => {
      const u = await users();
      return u.length > 0 && u.every((x) => x === 'bob');
    }, 10000, 50);
    await page.screenshot({ path: join(dir, 'dashboard-audit.png'), fullPage: true });

    // The token stays for the tab: a reload is still signed in.
    await page.reload();
    await page.locator(`#sessions tr[data-key="${alice.sessionId}"]`).waitFor();

    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await Promise.allSettled([alice.closeCode === null ? alice.close() : null, bob.closeCode === null ? bob.close() : null]);
  }
}

describe('the admin dashboard in headless Chromium', () => {
  test('on an agent with two workers', async () => {
    const agent = await startAgent(['--workers', '2']);
    try {
      await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready'));
      await tour(agent.port, agent.dir, 2);
    } finally {
      await agent.cleanup();
    }
  });

  test('on serve', async () => {
    const s = await startServe();
    try {
      await tour(s.port, s.dir, 1);
    } finally {
      await s.cleanup();
    }
  });
});
