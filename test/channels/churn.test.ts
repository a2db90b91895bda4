import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startServer, TEST_CHANNEL_SECRET } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { signChannel } from '../../src/auth/channel-signature.js';
import { waitFor } from '../helpers/wait.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function settle(): Promise<number> {
  for (let i = 0; i < 6; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 100));
  gc();
  return process.memoryUsage().heapUsed;
}

/**
 * How many cycles the churn runs (ZENCONN_CHURN_CYCLES): a few seconds' worth in `npm test`;
 * `npm run soak` runs this file with 20,000 (bench/soak.ts, `--churn-cycles`).
 */
const CYCLES = Number(process.env.ZENCONN_CHURN_CYCLES ?? 200);
const PARALLEL = 40;

test(`churn: ${CYCLES} cycles of connect → subscribe (public and private) → broadcast → close leak nothing`, { timeout: Math.max(60_000, CYCLES * 30) }, async (t) => {
  const srv = await startServer({ 'rate-limit-burst': '1000', 'rate-limit-per-sec': '1000' });
  try {
    let n = 0;
    const cycle = async (): Promise<void> => {
      const i = n++;
      const c = await TestClient.connect(srv.port, { protocol: i % 2 === 0 ? 'json' : 'bin' });
      const pub = `churn.${i % 16}`;
      const priv = `private.churn.${i % 8}`;
      assert.equal((await c.subscribe(pub)).type, 'subscribed');
      assert.equal((await c.subscribe(priv, signChannel(TEST_CHANNEL_SECRET, c.sessionId, priv))).type, 'subscribed');
      c.send({ type: 'broadcast', channel: pub, data: { i, text: 'churn' } });
      await c.nextOf('received');
      await c.close();
    };
    const run = async (count: number): Promise<void> => {
      const target = n + count;
      await Promise.all(
        Array.from({ length: PARALLEL }, async () => {
          while (n < target) await cycle();
        })
      );
    };
    await run(Math.min(1000, CYCLES));
    await waitFor('every session of the warm-up closed', () => srv.node.hub.sessions.size === 0);
    const baseline = await settle();
    await run(CYCLES);
    await waitFor('every session closed', () => srv.node.hub.sessions.size === 0);
    const end = await settle();
    const growth = end - baseline;
    t.diagnostic(`heap after warm-up ${(baseline / 1048576).toFixed(2)} MiB, after ${CYCLES} cycles ${(end / 1048576).toFixed(2)} MiB (growth ${(growth / 1048576).toFixed(2)} MiB)`);
    assert.equal(srv.node.hub.channels.size, 0, 'the channel registry is empty');
    assert.ok(growth < 5 * 1024 * 1024, `heap grew ${(growth / 1048576).toFixed(2)} MiB over ${CYCLES} cycles`);
    await srv.stop();
    const db = new Database(join(srv.dir, 'zenconn.db'), { readonly: true });
    const row = db.prepare('SELECT COUNT(*) AS total, SUM(disconnected_at IS NULL) AS open FROM sessions').get() as { total: number; open: number };
    db.close();
    assert.equal(row.total, n);
    assert.equal(row.open, 0, 'every session row is closed');
  } finally {
    if (srv.node.state !== 'closed') await srv.stop();
  }
});
