import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { sqliteRows, startAgent } from './cluster-helpers.js';
import { waitFor } from '../helpers/wait.js';

describe('zenconn agent --port 0: the servers rows', () => {
  test('the agent and its workers (and a replacement) record the bound port, never :0', async () => {
    const agent = await startAgent(['--workers', '2']);
    const bound = `http://127.0.0.1:${agent.port}`;
    const live = (): Array<Record<string, unknown>> => sqliteRows(agent.database).servers.filter((r) => r.stopped_at === null);
    const describeRows = (): string => JSON.stringify(live().map((r) => ({ role: r.role, pid: r.pid, address: r.address })));
    try {
      const workers = await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready'));
      const pids = workers.map((w) => w.pid);
      await waitFor(`every live row to have ${bound}: ${describeRows()}`, () => {
        const rows = live();
        return rows.length === 3 && pids.every((pid) => rows.some((r) => r.pid === pid)) && rows.every((r) => r.address === bound);
      });

      // A replacement is spawned after the agent bound its port: it learns it from its `init`.
      process.kill(pids[0]!, 'SIGKILL');
      const after = await agent.waitWorkers((w) => w.length === 2 && w.every((x) => x.state === 'ready') && !w.some((x) => x.pid === pids[0]), 10000);
      const fresh = after.find((w) => !pids.includes(w.pid))!;
      await waitFor(`the replacement's row to have ${bound}: ${describeRows()}`, () => {
        const rows = live();
        return rows.length === 3 && rows.some((r) => r.pid === fresh.pid) && rows.every((r) => r.address === bound);
      });
      for (const r of live()) assert.doesNotMatch(String(r.address), /:0$/);
    } finally {
      await agent.cleanup();
    }
  });
});
