/**
 * Two costs of the audit writer that npm test no longer measures (tests assert
 * behaviour, benchmarks time it):
 * - CPU spent while every transaction slot is taken (the writer must wait, not spin);
 * - how soon a row is acknowledged from the journal when a database write is slow.
 *
 *   node dist/bench/audit-writer.js
 *
 * The figures of the former test thresholds: under 100 ms of CPU in 300 ms of waiting,
 * and an acknowledgement under 350 ms with a 400 ms write and `slowWriteMs` 100.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditWriter } from '../src/audit/audit-writer.js';
import { journalKey } from '../src/audit/audit-journal.js';
import type { AuditEntry } from '../src/audit/audit-sink.js';
import { SqliteStore } from '../src/store/sqlite-store.js';

const entry = (i: number): AuditEntry => ({
  messageId: `m${i}`,
  at: new Date(),
  sessionId: 's1',
  userId: null,
  direction: 'in',
  type: 'broadcast',
  channel: 'bench',
  payload: { i },
  recipients: null
});
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Options = ConstructorParameters<typeof AuditWriter>[0];

async function withWriter(options: (store: SqliteStore) => Partial<Options>, run: (writer: AuditWriter) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'zenconn-bench-audit-'));
  const store = new SqliteStore(':memory:');
  await store.open();
  const writer = new AuditWriter({ store, serverId: 'bench', journalKey: journalKey('sqlite::memory:'), journalDir: join(dir, 'journal'), ...options(store) });
  writer.start();
  try {
    await run(writer);
  } finally {
    await writer.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

let release: () => void = () => undefined;
const gate = new Promise<void>((r) => (release = r));
const gated = (store: SqliteStore): Partial<Options> => ({
  asyncWrite: true,
  commitsInFlight: 2,
  write: async (rows) => {
    await gate;
    await store.writeAudit(rows);
  }
});
await withWriter(gated, async (writer) => {
  for (let i = 0; i < 3; i++) {
    writer.record(entry(i));
    await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage();
  await pause(300);
  const used = process.cpuUsage(cpu);
  console.log(`slots taken: ${((used.user + used.system) / 1000).toFixed(1)} ms of CPU in 300 ms of waiting`);
  release();
  await writer.flush(2000);
});

const slow = (store: SqliteStore): Partial<Options> => ({
  slowWriteMs: 100,
  retryMinMs: 20,
  write: async (rows) => {
    await pause(400);
    await store.writeAudit(rows);
  }
});
await withWriter(slow, async (writer) => {
  const started = performance.now();
  for (let i = 0; i < 10; i++) writer.record(entry(i));
  const acked = await new Promise<number>((r) => writer.afterDurable(() => r(performance.now() - started)));
  console.log(`slow write (400 ms, slowWriteMs 100): acknowledged from the journal after ${acked.toFixed(1)} ms`);
  await writer.flush(5000);
});
