/**
 * The worker-thread side of {@link SqliteAuditThread} (audit-sqlite-thread.ts): its own
 * better-sqlite3 connection to the database file, writing audit batches and retention
 * deletes as the main thread asks. Not imported by anything but that thread's `Worker`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { auditWriteStatements } from '../store/sqlite-store.js';
import type { AuditRecord } from '../store/store.js';
import type { AuditThreadReply, AuditThreadRequest } from './audit-sqlite-thread.js';

const { path, busyTimeoutMs } = workerData as { path: string; busyTimeoutMs: number };
const port = parentPort!;

let statements: ReturnType<typeof auditWriteStatements> | null = null;
function open(): ReturnType<typeof auditWriteStatements> {
  if (statements !== null) return statements;
  // The main thread's store opened (and migrated) the file already: WAL, so this second
  // connection writes while the other reads, and its commits take turns with the other's.
  const db = new Database(path, { fileMustExist: true });
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  db.pragma('synchronous = NORMAL');
  statements = auditWriteStatements(db);
  return statements;
}

port.on('message', (m: AuditThreadRequest) => {
  let reply: AuditThreadReply;
  try {
    const s = open();
    if (m.op === 'write') {
      s.write(m.rows as AuditRecord[]);
      reply = { id: m.id, ok: true, n: m.rows.length };
    } else {
      reply = { id: m.id, ok: true, n: s.deleteBefore(m.before, m.limit) };
    }
  } catch (err) {
    const e = err as Error & { code?: unknown };
    reply = { id: m.id, ok: false, message: e.message, code: typeof e.code === 'string' ? e.code : null };
  }
  port.postMessage(reply);
});
