import { Worker } from 'node:worker_threads';
import type { AuditRecord } from './store.js';

/** Main thread → worker. */
export type AuditThreadRequest =
  | { id: number; op: 'write'; rows: readonly AuditRecord[] }
  | { id: number; op: 'delete'; before: Date; limit: number }
  | { id: number; op: 'checkpoint' }
  | { id: number; op: 'close' };

/** Worker → main thread. */
export type AuditThreadReply = { id: number; ok: true; n: number } | { id: number; ok: false; message: string; code: string | null };

/**
 * A worker thread with a SQLite connection of its own, beside the main thread's store.
 *
 * Why: better-sqlite3 is synchronous. The audit writer commits on the main thread (a
 * few rows per commit take a fraction of a millisecond, and no thread hop sits between
 * a message and its `received`), but a WAL checkpoint — which SQLite otherwise runs
 * inside whichever commit crosses a thousand pages — copies pages back and fsyncs the
 * database file, and would stop fan-out for as long as the disk takes. So the main
 * connection's automatic checkpoints are turned off (`SqliteStore.disableAutoCheckpoint`)
 * and this thread checkpoints every `checkpointMs` (PASSIVE: it blocks no reader or
 * writer). It also refreshes the planner statistics hourly, and runs retention deletes
 * so their index work stays off the main thread too.
 *
 * Errors keep their SQLite `code`. A worker that dies fails its pending calls and is
 * started again a second later (or by the next call).
 */
export class SqliteAuditThread {
  private readonly path: string;
  private readonly busyTimeoutMs: number;
  private readonly checkpointMs: number;
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (n: number) => void; reject: (err: Error) => void }>();
  private closed = false;

  /** `path`: the database file the main store has open (and migrated). `checkpointMs`: default 1000. */
  constructor(path: string, busyTimeoutMs = 5000, checkpointMs = 1000) {
    this.path = path;
    this.busyTimeoutMs = busyTimeoutMs;
    this.checkpointMs = checkpointMs;
  }

  /** Starts the thread (and with it the periodic checkpoints). */
  start(): void {
    this.spawn();
  }

  /** Checkpoints now (tests). */
  async checkpoint(): Promise<void> {
    await this.call({ op: 'checkpoint' });
  }

  /** Inserts the rows in one transaction in the worker (idempotent by id). */
  async write(rows: readonly AuditRecord[]): Promise<void> {
    if (rows.length === 0) return;
    await this.call({ op: 'write', rows });
  }

  /** `deleteAuditBefore`, in the worker. */
  deleteBefore(before: Date, limit: number): Promise<number> {
    return this.call({ op: 'delete', before, limit });
  }

  private call(request: DistributiveOmit<AuditThreadRequest, 'id'>): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the audit SQLite thread is closed'));
    const worker = this.spawn();
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, ...request } as AuditThreadRequest);
    });
  }

  private spawn(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(new URL('./sqlite-audit-worker.js', import.meta.url), {
      workerData: { path: this.path, busyTimeoutMs: this.busyTimeoutMs, checkpointMs: this.checkpointMs }
    });
    worker.unref();
    worker.on('message', (m: AuditThreadReply) => {
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.n);
      else p.reject(Object.assign(new Error(m.message), m.code === null ? {} : { code: m.code }));
    });
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    // An error thrown in the worker may arrive as a plain object (a SqliteError does).
    worker.on('error', (err: unknown) =>
      fail(err instanceof Error ? err : new Error(String((err as { message?: unknown } | null)?.message ?? err)))
    );
    worker.on('exit', (code) => {
      fail(new Error(`the audit SQLite thread exited (${code})`));
      // The checkpoints must go on: start another one (not in a tight loop).
      if (!this.closed) setTimeout(() => this.closed || this.worker !== null || this.spawn(), 1000).unref();
    });
    this.worker = worker;
    return worker;
  }

  /** Stops the worker: the calls in flight are answered (up to 2 s), a last checkpoint, its connection closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    const worker = this.worker;
    if (worker !== null) {
      const closing = this.call({ op: 'close' }).catch(() => 0);
      this.closed = true;
      await Promise.race([closing, new Promise((r) => setTimeout(r, 2000))]);
    }
    this.closed = true;
    this.worker = null;
    await worker?.terminate();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
