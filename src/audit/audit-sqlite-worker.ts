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

/** How often the planner statistics are refreshed (`PRAGMA optimize`). */
const OPTIMIZE_EVERY_MS = 3_600_000;

let db: Database.Database | null = null;
let statements: ReturnType<typeof auditWriteStatements> | null = null;
let optimizedAt = 0;

/**
 * Keeps the planner statistics of the audit indexes current, as SQLite advises for
 * long-lived connections: without them a query filtering on two columns may walk the
 * wrong index of a big table. 0x10002 analyzes what needs it, with a row limit, so it
 * takes milliseconds; it runs here, beside the main thread.
 */
function optimize(): void {
  optimizedAt = Date.now();
  try {
    db?.pragma('optimize=0x10002');
  } catch {
    // Busy or read-only: the next hour will do.
  }
}

function open(): ReturnType<typeof auditWriteStatements> {
  if (statements !== null) return statements;
  // The main thread's store opened (and migrated) the file already: WAL, so this second
  // connection writes while the other reads, and its commits take turns with the other's.
  const conn = new Database(path, { fileMustExist: true });
  conn.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  conn.pragma('synchronous = NORMAL');
  statements = auditWriteStatements(conn);
  db = conn;
  optimize();
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
  if (Date.now() - optimizedAt > OPTIMIZE_EVERY_MS) optimize();
});
