import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startZen, runZen } from '../helpers/process.js';
import { tempDir, TEST_JWT_SECRET, TEST_CHANNEL_SECRET } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import type { ProtocolName } from '../../src/protocol/codec.js';

// The "done when", on a running `zenconn serve`, with tokens from the CLI itself.
for (const protocol of ['json', 'bin'] as ProtocolName[]) {
  test(`grants, private channels and * broadcasts on a running server (${protocol})`, async () => {
    const dir = tempDir();
    const env = { ZENCONN_JWT_SECRET: TEST_JWT_SECRET, ZENCONN_CHANNEL_SECRET: TEST_CHANNEL_SECRET };
    const zen = await startZen(['serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', `sqlite:${join(dir, 'z.db')}`, '--access-log', 'off', '--spool-dir', join(dir, 'spool')], { env });
    try {
      const minted = await runZen(['token', '--sub', 'boss', '--grants', 'broadcast'], { env });
      assert.equal(minted.code, 0, minted.stderr);
      const granted = await TestClient.connect(zen.port, { protocol, token: minted.stdout.trim() });
      const anon = await TestClient.connect(zen.port, { protocol });
      const sign = async (session: string): Promise<string> => {
        const r = await runZen(['sign', '--session', session, '--channel', 'private.invoices'], { env });
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      };
      assert.deepEqual(await anon.subscribe('private.invoices', await sign(anon.sessionId)), { type: 'subscribed', channel: 'private.invoices' });
      assert.deepEqual(await granted.subscribe('private.invoices', await sign(granted.sessionId)), { type: 'subscribed', channel: 'private.invoices' });
      assert.deepEqual(await anon.nextOf('joined'), { type: 'joined', channel: 'private.invoices', data: { session: granted.sessionId, user: 'boss' } });
      granted.send({ type: 'broadcast', channel: '*', data: { note: 'to all' } });
      assert.deepEqual(await granted.nextOf('received'), { type: 'received', channel: '*', count: 1 });
      const ev = await anon.nextOf('event');
      assert.equal(ev.channel, '*');
      assert.deepEqual(ev.data, { note: 'to all' });
      assert.equal(ev.from, granted.sessionId);
      anon.send({ type: 'broadcast', channel: '*', data: 'me too' });
      assert.deepEqual(await anon.nextOf('error'), { type: 'error', channel: '*', errors: ['forbidden'] });
      assert.deepEqual((await granted.quiet(200)).filter((f) => f.type === 'event'), []);
    } finally {
      await zen.stop();
    }
  });
}
