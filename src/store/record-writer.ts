import { appendFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  SpoolFile,
  claimOrphans,
  encodeEntry,
  ownSpoolPath,
  spoolLabel,
  type SpoolEntry,
  type SpoolRead
} from './spool.js';
import type { RecordBatch, SessionCloseRecord, SessionOpenRecord, Store, StoreLogger } from './store.js';

/** Options of {@link RecordWriter}. Every time is in milliseconds. */
export interface RecordWriterOptions {
  /** Where the records go; open it before constructing the writer. Required. */
  store: Store;
  /** This server's id; names the spool file. Required. */
  serverId: string;
  /** Longest a record waits for its batch to be written while the database is healthy. Default 50. */
  batchMs?: number;
  /** Most records in one `writeBatch` transaction. Default 1000. */
  batchRows?: number;
  /** Most records held in memory while writes fail; the next one moves them all to the disk spool. Default 100000. */
  maxPendingRecords?: number;
  /** Directory of the spool files; must be local to the host. Default `./data/spool` (relative to the current directory). */
  spoolDir?: string;
  /** Largest the own spool file may grow, in bytes; records beyond it are dropped (counted in `dropped`, logged). Default 1 GiB. */
  maxSpoolBytes?: number;
  /** First retry delay after a failed write; it doubles on each failure. Default 100. */
  retryMinMs?: number;
  /** Cap of the retry delay. Default 2000. */
  retryMaxMs?: number;
  /** Structured logger (pino fits). Default: none. */
  logger?: StoreLogger;
}

/** Spool files held by a live writer of this process, so another writer here never claims them. */
const inUse = new Set<string>();

type Source = { kind: 'memory' } | { kind: 'file'; file: SpoolFile; read: SpoolRead };

/** The records of one `writeBatch`, and where they came from (so a success can be committed there). */
interface Batch {
  entries: SpoolEntry[];
  source: Source;
}

/** Repeating a batch that failed this way cannot succeed; isolate the faulty record instead of retrying. */
function isPermanent(err: unknown): boolean {
  if (err instanceof RangeError) return true; // e.g. an invalid Date
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  // PostgreSQL classes 22 (data exception) and 23 (integrity constraint violation).
  if (/^2[23][0-9A-Z]{3}$/.test(code)) return true;
  return code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG';
}

function toRecordBatch(entries: readonly SpoolEntry[]): RecordBatch {
  const batch: RecordBatch = { opens: [], closes: [] };
  for (const e of entries) {
    if (e.kind === 'open') batch.opens.push(e.record);
    else batch.closes.push(e.record);
  }
  return batch;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`RecordWriter: ${name} must be a positive number`);
  return value;
}

/**
 * Takes session records from the hot path and writes them in batches, losing none
 * when the database goes away.
 *
 * - `recordOpen` / `recordClose` are synchronous and never throw.
 * - Records are written in order, in batches of at most `batchRows`, about one
 *   transaction per `batchMs`, one `writeBatch` in flight at a time.
 * - A failed write is retried with backoff (`retryMinMs` doubling to `retryMaxMs`)
 *   while new records queue behind it. Past `maxPendingRecords` queued records,
 *   everything pending moves to an append-only ndjson file in `spoolDir` and new
 *   records are appended there; once the database answers, the file is replayed in
 *   order and deleted. Replays may repeat records already written; `Store.writeBatch`
 *   is idempotent, so that is harmless.
 * - A spool file left by a process that died (`<serverId>.<pid>.ndjson`) is claimed and
 *   replayed before this writer's own records.
 * - A record the database rejects for good (a constraint or data error) is appended to
 *   `<spoolDir>/<serverId>.rejected.ndjson` and logged, so one bad row cannot block the rest.
 *
 * Shutdown: stop accepting sessions, close them, then `await flush(ms)` and `close()`.
 */
export class RecordWriter {
  readonly #store: Store;
  readonly #logger: StoreLogger | undefined;
  readonly #batchMs: number;
  readonly #batchRows: number;
  readonly #maxPending: number;
  readonly #maxSpoolBytes: number;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #ownPath: string;
  readonly #rejectedPath: string;

  /** Records not yet in a batch, oldest first; `#head` is the first live index. Empty while spooling. */
  #queue: SpoolEntry[] = [];
  #head = 0;
  #queuedSince = 0;
  /** Claimed spool files of dead processes, oldest first, replayed before anything else. */
  #replay: SpoolFile[] = [];
  /** The own spool file; non-null while spooling, then new records are appended to it. */
  #spool: SpoolFile | null = null;
  /** The batch being written or retried; null when none. Set to null by a spill to abandon a memory batch. */
  #current: Batch | null = null;

  #pumping = false;
  #timer: NodeJS.Timeout | null = null;
  #timerDue = Infinity;
  #wake: (() => void) | null = null;
  #retryMs: number;
  #healthy = true;
  #failingSince = 0;
  #lastFailureLog = 0;
  #flushing = 0;
  #closed = false;
  #dropped = 0;
  #rejected = 0;
  #drainWaiters = new Set<() => void>();

  /** Claims and schedules the replay of orphaned spool files; throws if `spoolDir` cannot be created. */
  constructor(options: RecordWriterOptions) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.#batchMs = positive('batchMs', options.batchMs ?? 50);
    this.#batchRows = Math.floor(positive('batchRows', options.batchRows ?? 1000));
    this.#maxPending = Math.floor(positive('maxPendingRecords', options.maxPendingRecords ?? 100_000));
    this.#maxSpoolBytes = positive('maxSpoolBytes', options.maxSpoolBytes ?? 2 ** 30);
    this.#retryMinMs = positive('retryMinMs', options.retryMinMs ?? 100);
    this.#retryMaxMs = Math.max(this.#retryMinMs, options.retryMaxMs ?? 2000);
    this.#retryMs = this.#retryMinMs;
    const dir = resolve(options.spoolDir ?? './data/spool');
    const label = spoolLabel(options.serverId);
    this.#ownPath = ownSpoolPath(dir, label);
    this.#rejectedPath = join(dir, `${label}.rejected.ndjson`);
    if (inUse.has(this.#ownPath)) {
      throw new Error(`RecordWriter: a writer for server "${options.serverId}" is already running in this process`);
    }
    mkdirSync(dir, { recursive: true });
    // Before marking the own path in use, so a file left at it by an earlier writer is claimed too.
    for (const path of claimOrphans(dir, inUse)) {
      const file = SpoolFile.create(path);
      inUse.add(path);
      this.#replay.push(file);
      this.#logger?.warn({ file: path, records: file.remaining }, 'replaying session records spooled by a previous run');
    }
    inUse.add(this.#ownPath);
    this.#schedule();
  }

  /** Records a session being accepted. Synchronous; never throws. */
  recordOpen(record: SessionOpenRecord): void {
    this.#record({ kind: 'open', record });
  }

  /** Records a session ending. Synchronous; never throws. */
  recordClose(record: SessionCloseRecord): void {
    this.#record({ kind: 'close', record });
  }

  /** Records not yet committed to the database, in memory and on disk. */
  get pending(): number {
    let n = this.#inMemory();
    if (this.#spool) n += this.#spool.remaining;
    for (const f of this.#replay) n += f.remaining;
    return n;
  }

  /** False from a failed write until the next successful one. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** True while new records go to the disk spool rather than memory. */
  get spooling(): boolean {
    return this.#spool !== null;
  }

  /** Records lost: the spool was over `maxSpoolBytes`, or the disk refused the write. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Records the database refused for good; they are in the `.rejected.ndjson` file. */
  get rejected(): number {
    return this.#rejected;
  }

  /**
   * Writes everything pending, without waiting for the batch timer. Resolves true once
   * nothing is pending; after `timeoutMs`, moves what is still in memory to the disk
   * spool (replayed by the next start) and resolves false.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.#closed) return this.pending === 0;
    this.#flushing++;
    try {
      this.#kick();
      if (await this.#drained(timeoutMs)) return true;
      this.#spill('flush timed out');
      this.#spool?.flush();
      this.#logger?.warn({ pending: this.pending, file: this.#spool?.path }, 'flush timed out; session records left in the spool');
      return false;
    } finally {
      this.#flushing--;
    }
  }

  /**
   * Stops writing. Whatever is still pending is left in the spool on disk (call
   * `flush` first to write it). Records that still arrive are appended to the spool file.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#wake?.();
    try {
      this.#spill('closing');
      for (const f of [...this.#replay, ...(this.#spool ? [this.#spool] : [])]) {
        if (f.remaining === 0) f.remove();
        else f.close();
        inUse.delete(f.path);
      }
    } catch (err) {
      this.#logger?.error({ err }, 'could not save pending session records to the spool');
    }
    inUse.delete(this.#ownPath);
    this.#notifyDrain();
  }

  #record(entry: SpoolEntry): void {
    try {
      if (this.#closed) {
        appendFileSync(this.#ownPath, encodeEntry(entry));
        return;
      }
      // Memory holds at most maxPendingRecords; the next record moves them all to disk.
      if (!this.#spool && this.#inMemory() >= this.#maxPending) this.#spill('maxPendingRecords reached');
      if (this.#spool) {
        this.#appendToSpool(entry);
      } else {
        if (this.#queue.length === this.#head) this.#queuedSince = Date.now();
        this.#queue.push(entry);
      }
      this.#schedule();
    } catch (err) {
      this.#dropped++;
      this.#logger?.error({ err, sessionId: entry.record.id }, 'session record lost: cannot spool it');
    }
  }

  /** Records held in memory: queued, plus the batch being written if it came from the queue. */
  #inMemory(): number {
    const current = this.#current?.source.kind === 'memory' ? this.#current.entries.length : 0;
    return this.#queue.length - this.#head + current;
  }

  #appendToSpool(entry: SpoolEntry): void {
    const spool = this.#spool!;
    const line = encodeEntry(entry);
    if (spool.bytes + line.length > this.#maxSpoolBytes) {
      if (this.#dropped++ === 0 || this.#dropped % 10_000 === 0) {
        this.#logger?.error({ dropped: this.#dropped, file: spool.path }, 'spool is full (maxSpoolBytes); session records dropped');
      }
      return;
    }
    spool.append(line);
  }

  /** Moves every record held in memory (the batch being retried first) to the end of the own spool file. */
  #spill(reason: string): void {
    const current = this.#current?.source.kind === 'memory' ? this.#current : null;
    const queued = this.#queue.length - this.#head;
    if (!current && queued === 0) return;
    if (!this.#spool) {
      this.#spool = SpoolFile.create(this.#ownPath);
      this.#logger?.warn({ reason, pending: this.pending, file: this.#ownPath }, 'spooling session records to disk');
    }
    if (current) {
      // Abandoned: if its write still succeeds, the replay repeats it harmlessly.
      this.#current = null;
      for (const e of current.entries) this.#appendToSpool(e);
    }
    for (let i = this.#head; i < this.#queue.length; i++) this.#appendToSpool(this.#queue[i]!);
    this.#queue = [];
    this.#head = 0;
    this.#spool.flush();
  }

  /** Whether the next batch should be written now rather than after the batch timer. */
  #due(now: number): boolean {
    if (this.#flushing > 0 || this.#replay.length > 0 || this.#spool) return true;
    const queued = this.#queue.length - this.#head;
    return queued >= this.#batchRows || (queued > 0 && now - this.#queuedSince >= this.#batchMs);
  }

  /** Arms the timer that starts the pump, unless it is running (it picks new records up itself). */
  #schedule(): void {
    if (this.#closed || this.#pumping) return;
    const queued = this.#queue.length - this.#head;
    const urgent = queued >= this.#batchRows || this.#flushing > 0 || this.#replay.length > 0 || this.#spool !== null;
    if (!urgent && (this.#timer || queued === 0)) return;
    const now = Date.now();
    const due = urgent ? now : this.#queuedSince + this.#batchMs;
    if (this.#timer) {
      if (this.#timerDue <= due) return;
      clearTimeout(this.#timer);
    }
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerDue = Infinity;
      void this.#pump();
    }, Math.max(0, due - now));
  }

  /** Starts a write now (for flush): cuts the batch timer and the retry delay short. */
  #kick(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerDue = Infinity;
    this.#wake?.();
    void this.#pump();
  }

  /** The single write loop: one batch at a time until nothing is due. */
  async #pump(): Promise<void> {
    if (this.#pumping || this.#closed) return;
    this.#pumping = true;
    try {
      while (!this.#closed) {
        if (!this.#current) {
          if (!this.#due(Date.now())) break;
          try {
            this.#current = this.#nextBatch();
          } catch (err) {
            this.#failed(err, 'cannot read the session record spool');
            await this.#backoff();
            continue;
          }
          if (!this.#current) break;
        }
        const batch = this.#current;
        try {
          await this.#write(batch.entries);
          if (this.#closed) break;
          if (this.#current === batch) {
            if (batch.source.kind === 'file') batch.source.file.commit(batch.source.read);
            this.#current = null;
          }
          this.#succeeded();
        } catch (err) {
          if (this.#closed) break;
          if (this.#current !== batch) continue; // spilled meanwhile: its records are in the spool now
          this.#failed(err, 'session records could not be written; retrying');
          await this.#backoff();
        }
        this.#notifyDrain();
      }
    } finally {
      this.#pumping = false;
      this.#notifyDrain();
      this.#schedule();
    }
  }

  /** The next batch, oldest records first: claimed files, then memory, then the own spool. */
  #nextBatch(): Batch | null {
    while (this.#replay.length > 0) {
      const file = this.#replay[0]!;
      const read = file.read(this.#batchRows);
      if (read.lines === 0) {
        file.remove();
        inUse.delete(file.path);
        this.#replay.shift();
        this.#logger?.info({ file: file.path }, 'spooled session records of a previous run replayed');
        continue;
      }
      for (const line of read.bad) this.#reject(line, new Error('malformed spool line'));
      if (read.entries.length > 0) return { entries: read.entries, source: { kind: 'file', file, read } };
      file.commit(read);
    }
    const queued = this.#queue.length - this.#head;
    if (queued > 0) {
      const n = Math.min(queued, this.#batchRows);
      const entries = this.#queue.slice(this.#head, this.#head + n);
      this.#head += n;
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      } else {
        // The rest waits for the next window: about one transaction per batchMs.
        this.#queuedSince = Date.now();
        if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
      }
      return { entries, source: { kind: 'memory' } };
    }
    while (this.#spool) {
      const file = this.#spool;
      const read = file.read(this.#batchRows);
      if (read.lines === 0) {
        file.remove();
        this.#spool = null;
        this.#logger?.info({ file: file.path }, 'session record spool replayed; back to memory');
        return null;
      }
      for (const line of read.bad) this.#reject(line, new Error('malformed spool line'));
      if (read.entries.length > 0) return { entries: read.entries, source: { kind: 'file', file, read } };
      file.commit(read);
    }
    return null;
  }

  /**
   * Writes one batch. When the database refuses it for good, writes its records one by
   * one and sets the refused ones aside; a transient error on the way retries the
   * whole batch (idempotent).
   */
  async #write(entries: SpoolEntry[]): Promise<void> {
    try {
      await this.#store.writeBatch(toRecordBatch(entries));
    } catch (err) {
      if (!isPermanent(err)) throw err;
      for (const e of entries) {
        try {
          await this.#store.writeBatch(toRecordBatch([e]));
        } catch (one) {
          if (!isPermanent(one)) throw one;
          this.#reject(encodeEntry(e), one);
        }
      }
    }
  }

  #reject(line: string, err: unknown): void {
    this.#rejected++;
    this.#logger?.error({ err, file: this.#rejectedPath }, 'session record rejected by the database; set aside');
    try {
      appendFileSync(this.#rejectedPath, line.endsWith('\n') ? line : line + '\n');
    } catch (e) {
      this.#dropped++;
      this.#logger?.error({ err: e }, 'session record lost: cannot write the rejected file');
    }
  }

  #succeeded(): void {
    this.#retryMs = this.#retryMinMs;
    if (this.#healthy) return;
    this.#healthy = true;
    this.#logger?.info({ downMs: Date.now() - this.#failingSince, pending: this.pending }, 'session records are being written again');
  }

  #failed(err: unknown, msg: string): void {
    const now = Date.now();
    if (this.#healthy) {
      this.#healthy = false;
      this.#failingSince = now;
      this.#lastFailureLog = now;
      this.#logger?.error({ err, pending: this.pending }, msg);
    } else if (now - this.#lastFailureLog >= 30_000) {
      this.#lastFailureLog = now;
      this.#logger?.warn({ err, pending: this.pending, downMs: now - this.#failingSince }, msg);
    }
  }

  /** Waits the retry delay (cut short by `flush` and `close`), then doubles it up to the cap. */
  async #backoff(): Promise<void> {
    const ms = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, this.#retryMaxMs);
    try {
      this.#spool?.flush();
    } catch (err) {
      this.#logger?.error({ err }, 'cannot write the session record spool');
    }
    await new Promise<void>((done) => {
      const timer = setTimeout(wake, ms);
      function wake(): void {
        clearTimeout(timer);
        done();
      }
      this.#wake = wake;
    });
    this.#wake = null;
  }

  #isDrained(): boolean {
    return this.#current === null && this.pending === 0;
  }

  #drained(timeoutMs: number): Promise<boolean> {
    if (this.#isDrained()) return Promise.resolve(true);
    return new Promise((done) => {
      const check = (): void => {
        if (!this.#isDrained() && !this.#closed) return;
        clearTimeout(timer);
        this.#drainWaiters.delete(check);
        done(this.#isDrained());
      };
      const timer = setTimeout(() => {
        this.#drainWaiters.delete(check);
        done(false);
      }, timeoutMs);
      this.#drainWaiters.add(check);
    });
  }

  #notifyDrain(): void {
    for (const check of [...this.#drainWaiters]) check();
  }
}
