/**
 * The worker-thread side of {@link SqliteAuditThread} (sqlite-audit-thread.ts): its own
 * better-sqlite3 connection to the database file. It checkpoints the WAL every
 * `checkpointMs` (the main connection does not: see `SqliteStore.disableAutoCheckpoint`),
 * keeps the planner statistics current, and runs the writes and deletes the main thread
 * hands it. Not imported by anything but that thread's `Worker`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { auditWriteStatements } from './sqlite-audit.js';
import type { AuditRecord } from './store.js';
import type { AuditThreadReply, AuditThreadRequest } from './sqlite-audit-thread.js';

const { path, busyTimeoutMs, checkpointMs } = workerData as { path: string; busyTimeoutMs: number; checkpointMs: number };
const port = parentPort!;

/** How often the planner statistics are refreshed (`PRAGMA optimize`). */
const OPTIMIZE_EVERY_MS = 3_600_000;

// The main thread's store opened (and migrated) the file already: WAL, so this second
// connection works beside it. A failure to open is kept and answered to every call.
let db: Database.Database | null = null;
let statements: ReturnType<typeof auditWriteStatements> | null = null;
let openError: { message: string; code: string | null } | null = null;
try {
  db = new Database(path, { fileMustExist: true });
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  db.pragma('synchronous = NORMAL');
  statements = auditWriteStatements(db);
} catch (err) {
  const e = err as Error & { code?: unknown };
  openError = { message: e.message, code: typeof e.code === 'string' ? e.code : null };
}

/**
 * PASSIVE: copies what it can without waiting for (or blocking) readers and writers; the
 * fsync it ends with happens here, not in a commit on the main thread. Once everything
 * is copied the next commit starts the WAL file over, so it stays small.
 */
function checkpoint(): void {
  try {
    db?.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy: the next tick will do.
  }
}

/**
 * Keeps the planner statistics of the audit indexes current, as SQLite advises for
 * long-lived connections: without them a query filtering on two columns may walk the
 * wrong index of a big table. 0x10002 analyzes what needs it, with a row limit, so it
 * takes milliseconds.
 */
function optimize(): void {
  try {
    db?.pragma('optimize=0x10002');
  } catch {
    // Busy or read-only: the next hour will do.
  }
}

optimize();
const checkpoints = setInterval(checkpoint, Math.max(10, checkpointMs));
const optimizes = setInterval(optimize, OPTIMIZE_EVERY_MS);

port.on('message', (m: AuditThreadRequest) => {
  if (m.op === 'close') {
    clearInterval(checkpoints);
    clearInterval(optimizes);
    checkpoint();
    db?.close();
    port.postMessage({ id: m.id, ok: true, n: 0 } satisfies AuditThreadReply);
    port.close();
    return;
  }
  let reply: AuditThreadReply;
  try {
    if (statements === null) {
      reply = { id: m.id, ok: false, message: openError?.message ?? 'not open', code: openError?.code ?? null };
    } else if (m.op === 'write') {
      statements.write(m.rows as AuditRecord[]);
      reply = { id: m.id, ok: true, n: m.rows.length };
    } else if (m.op === 'delete') {
      reply = { id: m.id, ok: true, n: statements.deleteBefore(m.before, m.limit) };
    } else {
      checkpoint();
      reply = { id: m.id, ok: true, n: 0 };
    }
  } catch (err) {
    const e = err as Error & { code?: unknown };
    reply = { id: m.id, ok: false, message: e.message, code: typeof e.code === 'string' ? e.code : null };
  }
  port.postMessage(reply);
});
