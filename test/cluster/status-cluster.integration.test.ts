import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startZen, runZen, type ZenProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { withSchema } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

test('status --cluster lists every live node of the shared database; a vanished one is closed out by the others', async () => {
  const schema = await withSchema();
  const procs: ZenProcess[] = [];
  try {
    const dir = tempDir();
    const common = ['--host', '127.0.0.1', '--port', '0', '--public', join(dir, 'public'), '--database', schema.url, '--access-log', 'off', '--stale-server-ms', '1500', '--server-heartbeat-ms', '200'];
    const agent = await startZen(['agent', '--workers', '1', ...common, '--spool-dir', join(dir, 's1'), '--audit-journal-dir', join(dir, 'j1')]);
    procs.push(agent);
    const single = await startZen(['serve', ...common, '--spool-dir', join(dir, 's2'), '--audit-journal-dir', join(dir, 'j2')]);
    procs.push(single);
    const a = await TestClient.connect(agent.port);
    const b = await TestClient.connect(single.port);
    await waitFor("the session rows' batch", async () => {
      const rows = await schema.query<{ id: string }>('SELECT id FROM sessions WHERE id = ANY($1)', [[a.sessionId, b.sessionId]]);
      return rows.length === 2;
    });
    const out = await runZen(['status', '--cluster', '--json', '--database', schema.url, '--stale-server-ms', '1500']);
    assert.equal(out.code, 0, out.stderr);
    const nodes = (JSON.parse(out.stdout) as { nodes: Array<{ server: { role: string; pid: number }; sessions: number; workers: unknown[] }> }).nodes;
    assert.deepEqual(nodes.map((n) => n.server.role).sort(), ['agent', 'standalone']);
    assert.equal(nodes.find((n) => n.server.role === 'agent')!.workers.length, 1);
    assert.equal(nodes.find((n) => n.server.role === 'agent')!.sessions, 1);
    assert.equal(nodes.find((n) => n.server.role === 'standalone')!.sessions, 1);
    const table = await runZen(['status', '--cluster', '--database', schema.url, '--stale-server-ms', '1500']);
    assert.match(table.stdout, /worker/);
    assert.match(table.stdout, /2 node\(s\)/);

    // The standalone node vanishes; the agent's heartbeat closes it out.
    await single.stop('SIGKILL');
    let closed: Array<{ close_code: number | null }> = [];
    await waitFor(
      'the vanished node closed out',
      async () => {
        closed = await schema.query<{ close_code: number | null }>('SELECT close_code FROM sessions WHERE id = $1', [b.sessionId]);
        return closed[0]?.close_code === 1006;
      },
      10_000,
      100
    );
    assert.equal(closed[0]?.close_code, 1006);
    const after = await runZen(['status', '--cluster', '--json', '--database', schema.url, '--stale-server-ms', '1500']);
    assert.deepEqual((JSON.parse(after.stdout) as { nodes: Array<{ server: { role: string } }> }).nodes.map((n) => n.server.role), ['agent']);
    a.ws.terminate();
    b.ws.terminate();
  } finally {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await p.stop('SIGTERM');
    await schema.drop();
  }
});
