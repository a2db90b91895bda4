/**
 * Recovery throughput: how fast a subscribe with `since` replays what a client missed,
 * from the hot window and from the audit trail (SQLite, or PostgreSQL with --database).
 *
 *   node dist/bench/recovery.js                       # 10,000 events, SQLite
 *   node dist/bench/recovery.js --events 20000 --database postgres://…?options=-c%20search_path%3Dbench
 *
 * One in-process `serve` node per case: a publisher sends `--events` events of ~60 bytes,
 * then one client subscribes with `since` offset 0 and the time from its subscribe to its
 * last replayed event is measured (events/s). Hot window: `--history-size` = events;
 * audit: `--history-size 1`, so all but the last come from the database (the audit rows
 * are awaited first). Not part of `npm test`.
 */
import { parseArgs } from 'node:util';
import { startServer } from '../test/helpers/server.js';
import { makeToken } from '../test/helpers/tokens.js';
import { waitFor } from '../test/helpers/wait.js';
import { connect, publishMany, subscribeAt, takeEvents } from '../test/history/history-helpers.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '10000' }, database: { type: 'string' } } });
const n = Number(values.events);

async function run(label: string, historySize: number): Promise<void> {
  // The replay is written in one turn: it counts toward --max-buffered-bytes (1 MiB by default).
  const srv = await startServer({ 'history-size': String(historySize), 'recovery-max': String(n), 'max-buffered-bytes': '268435456', ...(values.database ? { database: values.database } : {}) });
  try {
    const pub = await connect(srv.port, await makeToken('backend', ['publish']));
    const a = await connect(srv.port);
    const epoch = (await subscribeAt(a, 'bench')).epoch!;
    await a.close();
    for (let i = 0; i < n; i += 500) await publishMany(pub, 'bench', Math.min(500, n - i), i);
    if (historySize < n) {
      await waitFor('all audit rows', async () => (await srv.node.store.auditEvents('bench', epoch, 0, n)).length >= n - historySize, 60000, 200);
    }
    const c = await connect(srv.port);
    const t0 = performance.now();
    const r = await subscribeAt(c, 'bench', { offset: 0, epoch });
    await takeEvents(c, 'bench', n, 120000);
    const ms = performance.now() - t0;
    console.log(`${label}: recovered=${r.recovered} ${n} events in ${ms.toFixed(0)} ms = ${Math.round((n / ms) * 1000).toLocaleString('en-US')} events/s`);
    for (const x of [pub, c]) await x.close();
  } finally {
    await srv.stop();
  }
}

await run('hot window', n);
await run(`audit trail (${values.database ? 'postgres' : 'sqlite'})`, 1);
process.exit(0);
