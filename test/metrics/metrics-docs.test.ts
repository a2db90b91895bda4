import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../helpers/server.js';
import { ROOT } from '../helpers/process.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { admin, httpGet } from '../cluster/cluster-helpers.js';

/** The `zenconn_*` metrics of the table in docs/operations.md's "Metrics" section, with their type column. */
function documented(): Map<string, string> {
  const ops = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
  const section = /^## Metrics$([\s\S]*?)^## /m.exec(ops);
  assert.ok(section, 'docs/operations.md has a "## Metrics" section');
  const rows = new Map<string, string>();
  for (const m of section[1]!.matchAll(/^\| `(zenconn_[a-z_]+)` \| (\w+)/gm)) rows.set(m[1]!, m[2]!);
  return rows;
}

test('the metrics table of docs/operations.md names every zenconn_* metric of a scrape, with its type, and no other', async () => {
  // With a webhook receiver (never contacted: no session opens), for the webhook metrics.
  const srv = await startServer({ webhook: 'http://127.0.0.1:9/hook' });
  try {
    const res = await httpGet(srv.port, '/metrics', { authorization: `Bearer ${await admin()}` });
    assert.equal(res.status, 200, res.body);
    const real = new Map([...parsePrometheus(res.body).types].filter(([name]) => name.startsWith('zenconn_')));
    // Agent only (asserted by the agent tests of metrics.integration.test.ts).
    real.set('zenconn_worker_scrape_up', 'gauge');
    assert.deepEqual([...documented()].sort(), [...real].sort());
  } finally {
    await srv.stop();
    rmSync(srv.dir, { recursive: true, force: true });
  }
});
