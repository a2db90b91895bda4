import { Worker } from 'node:worker_threads';
import type { AuditRecord } from '../store/store.js';

/** Main thread → worker. */
export type AuditThreadRequest =
  | { id: number; op: 'write'; rows: readonly AuditRecord[] }
  | { id: number; op: 'delete'; before: Date; limit: number };

/** Worker → main thread. */
export type AuditThreadReply = { id: number; ok: true; n: number } | { id: number; ok: false; message: string; code: string | null };

/**
 * Audit writes to a SQLite file from a worker thread with a connection of its own.
 *
 * Why: better-sqlite3 is synchronous, so on the main thread every audit transaction —
 * and the WAL checkpoint (with its fsync) that every thousandth page or so triggers —
 * would stop fan-out for its whole duration. In the worker the main thread only hands
 * the batch over (a structured clone of plain rows); the inserts, the commits and the
 * checkpoints happen beside it. A resolved `write` means committed (WAL,
 * `synchronous=NORMAL`: it survives a crash of the process, as the store's own commits).
 *
 * Errors keep their SQLite `code`, so the writer still tells a refused row from an
 * unavailable database. A worker that dies fails its pending calls; the next call
 * starts a new one.
 */
export class SqliteAuditThread {
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (n: number) => void; reject: (err: Error) => void }>();
  #closed = false;

  /** `path`: the database file the main store has open (and migrated). */
  constructor(path: string, busyTimeoutMs = 5000) {
    this.#path = path;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  /** Inserts the rows in one transaction in the worker (idempotent by id). */
  async write(rows: readonly AuditRecord[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#call({ op: 'write', rows });
  }

  /** `deleteAuditBefore`, in the worker. */
  deleteBefore(before: Date, limit: number): Promise<number> {
    return this.#call({ op: 'delete', before, limit });
  }

  #call(request: { op: 'write'; rows: readonly AuditRecord[] } | { op: 'delete'; before: Date; limit: number }): Promise<number> {
    if (this.#closed) return Promise.reject(new Error('the audit SQLite thread is closed'));
    const worker = this.#spawn();
    const id = this.#nextId++;
    return new Promise<number>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, ...request } as AuditThreadRequest);
    });
  }

  #spawn(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(new URL('./audit-sqlite-worker.js', import.meta.url), {
      workerData: { path: this.#path, busyTimeoutMs: this.#busyTimeoutMs }
    });
    worker.unref();
    worker.on('message', (m: AuditThreadReply) => {
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.n);
      else p.reject(Object.assign(new Error(m.message), m.code === null ? {} : { code: m.code }));
    });
    const fail = (err: Error): void => {
      if (this.#worker === worker) this.#worker = null;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the audit SQLite thread exited (${code})`)));
    this.#worker = worker;
    return worker;
  }

  /** Stops the worker (after the calls in flight are answered, up to 2 s). */
  async close(): Promise<void> {
    this.#closed = true;
    const until = Date.now() + 2000;
    while (this.#pending.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    const worker = this.#worker;
    this.#worker = null;
    await worker?.terminate();
  }
}
