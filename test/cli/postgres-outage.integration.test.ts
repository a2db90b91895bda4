import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startZen } from '../helpers/process.js';
import { tempDir } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { withSchema, urlWithPort, testPostgresUrl } from '../helpers/pg.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

test('PostgreSQL lost while serving: /readyz 503, sessions keep working, every row arrives once it is back', async () => {
  const schema = await withSchema();
  const pgPort = Number(new URL(testPostgresUrl()).port || 5432);
  const proxy = await startTcpProxy({ port: pgPort });
  const dir = tempDir();
  const zen = await startZen([
    'serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'),
    '--database', urlWithPort(schema.url, proxy.port), '--access-log', 'off',
    '--spool-dir', join(dir, 'spool'), '--db-max-pending-records', '10', '--server-heartbeat-ms', '200'
  ]);
  try {
    const before = await TestClient.connect(zen.port);
    proxy.cut('refuse');
    const during: TestClient[] = [];
    for (let i = 0; i < 25; i++) during.push(await TestClient.connect(zen.port));
    // Messaging is unaffected by the outage.
    await during[0]!.subscribe('outage');
    await during[1]!.subscribe('outage');
    during[0]!.send({ type: 'broadcast', channel: 'outage', data: 'still here' });
    assert.equal((await during[1]!.nextOf('event')).data, 'still here');
    for (const c of during.slice(0, 15)) await c.close();
    let ready = await fetch(`http://127.0.0.1:${zen.port}/readyz`);
    assert.equal(ready.status, 503);
    proxy.restore();
    await waitFor(
      'ready again',
      async () => {
        ready = await fetch(`http://127.0.0.1:${zen.port}/readyz`);
        return ready.status === 200;
      },
      10_000,
      100
    );
    assert.equal(ready.status, 200);
    const ids = [before, ...during].map((c) => c.sessionId);
    let rows: Array<{ id: string; close_code: number | null }> = [];
    await waitFor(
      'the rows written during the outage',
      async () => {
        rows = await schema.query<{ id: string; close_code: number | null }>('SELECT id, close_code FROM sessions WHERE id = ANY($1)', [ids]);
        return rows.length === ids.length && rows.filter((r) => r.close_code === 1000).length === 15;
      },
      10_000,
      100
    );
    assert.equal(rows.length, ids.length, 'every session opened during the outage has its row');
    assert.equal(rows.filter((r) => r.close_code === 1000).length, 15, 'closes during the outage are recorded');
    assert.equal(await zen.stop(), 0);
    const after = await schema.query<{ n: string }>('SELECT COUNT(*) AS n FROM sessions WHERE disconnected_at IS NULL');
    assert.equal(Number(after[0]!.n), 0);
  } finally {
    if (zen.child.exitCode === null) zen.child.kill('SIGKILL');
    await proxy.close();
    await schema.drop();
  }
});
