import { SqliteAuditThread } from './sqlite-audit-thread.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

/**
 * Audit work a backend can take off the main thread. The audit trail knows storage only
 * through `Store` and this: it never imports a backend.
 */
export interface AuditOffload {
  /** `deleteAuditBefore`, off the main thread. */
  deleteBefore(before: Date, limit: number): Promise<number>;
  /** Stops the offload (after the audit writer's last write). */
  close(): Promise<void>;
}

/**
 * Starts the audit offload of `store`, or returns null when its backend has none. A
 * SQLite file gets a worker thread with a connection of its own (see SqliteAuditThread):
 * the main connection's automatic checkpoints are turned off and the thread takes them,
 * with the retention deletes and the planner statistics, off the main thread. PostgreSQL
 * and an in-memory SQLite database need none.
 */
export function startAuditOffload(store: Store): AuditOffload | null {
  if (!(store instanceof SqliteStore) || store.path === ':memory:') return null;
  const thread = new SqliteAuditThread(store.path, store.busyTimeoutMs);
  store.disableAutoCheckpoint();
  thread.start();
  return thread;
}
