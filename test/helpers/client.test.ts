import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.js';
import { TestClient } from './client.js';

test('an assertion inside a wait for a frame fails the test at once, not at its timeout', async () => {
  const srv = await startServer();
  try {
    const c = await TestClient.connect(srv.port);
    const waiting = c.next((f) => {
      assert.equal(f.type, 'never');
      return true;
    }, 60_000);
    c.send({ type: 'subscribe', channel: 'news' });
    await assert.rejects(waiting, (err: Error) => err.name === 'AssertionError' && /never/.test(err.message));
    // The frame that failed the wait is kept for the next one.
    assert.deepEqual(await c.next(), { type: 'subscribed', channel: 'news' });
    await c.close();
  } finally {
    await srv.stop();
  }
});
