import { appendFileSync } from 'node:fs';
import { makePrivateDir, PRIVATE_FILE_MODE } from './private-files.js';
import { join, resolve } from 'node:path';
import { JournalFile, setAside, type JournalRead } from './durable/journal-file.js';
import { claimOrphans, holdFile, isHeld, releaseFile } from './durable/journal-claim.js';
import { writeIsolating } from './durable/permanent-error.js';
import { RetryPolicy } from './durable/retry-policy.js';
import { Waiters } from './durable/waiters.js';
import { encodeEntry, ownSpoolPath, spoolCodec, spoolLabel, type SpoolEntry } from './spool.js';
import type { RecordBatch, SessionCloseRecord, SessionOpenRecord, Store, StoreLogger } from './store.js';
import type { RecordWriterOptions } from './record-writer-options.js';

type SpoolFile = JournalFile<SpoolEntry>;

export type { RecordWriterOptions } from './record-writer-options.js';

type Source = { kind: 'memory' } | { kind: 'file'; file: SpoolFile; read: JournalRead<SpoolEntry> };

/** The records of one `writeBatch`, and where they came from (so a success can be committed there). */
interface SpoolBatch {
  entries: SpoolEntry[];
  source: Source;
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
  private readonly store: Store;
  private readonly logger: StoreLogger | undefined;
  private readonly batchMs: number;
  private readonly batchRows: number;
  private readonly maxPending: number;
  private readonly maxSpoolBytes: number;
  private readonly ownPath: string;
  private readonly rejectedPath: string;

  /** Records not yet in a batch, oldest first; `head` is the first live index. Empty while spooling. */
  private queue: SpoolEntry[] = [];
  private head = 0;
  private queuedSince = 0;
  /** Claimed spool files of dead processes, oldest first, replayed before anything else. */
  private replay: SpoolFile[] = [];
  /** The own spool file; non-null while spooling, then new records are appended to it. */
  private spool: SpoolFile | null = null;
  /** The batch being written or retried; null when none. Set to null by a spill to abandon a memory batch. */
  private current: SpoolBatch | null = null;

  private pumping = false;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Infinity;
  private readonly retry: RetryPolicy;
  private flushing = 0;
  private closed = false;
  private droppedCount = 0;
  private rejectedCount = 0;
  private readonly drainWaiters = new Waiters();

  /** Claims and schedules the replay of orphaned spool files; throws if `spoolDir` cannot be created. */
  constructor(options: RecordWriterOptions) {
    this.store = options.store;
    this.logger = options.logger;
    this.batchMs = positive('batchMs', options.batchMs ?? 50);
    this.batchRows = Math.floor(positive('batchRows', options.batchRows ?? 1000));
    this.maxPending = Math.floor(positive('maxPendingRecords', options.maxPendingRecords ?? 100_000));
    this.maxSpoolBytes = positive('maxSpoolBytes', options.maxSpoolBytes ?? 2 ** 30);
    const retryMinMs = positive('retryMinMs', options.retryMinMs ?? 100);
    this.retry = new RetryPolicy({
      minMs: retryMinMs,
      maxMs: Math.max(retryMinMs, options.retryMaxMs ?? 2000),
      logger: this.logger,
      recoveredMsg: 'session records are being written again'
    });
    const dir = resolve(options.spoolDir ?? './data/spool');
    const label = spoolLabel(options.serverId);
    this.ownPath = ownSpoolPath(dir, label);
    this.rejectedPath = join(dir, `${label}.rejected.ndjson`);
    if (isHeld(this.ownPath)) {
      throw new Error(`RecordWriter: a writer for server "${options.serverId}" is already running in this process`);
    }
    makePrivateDir(dir);
    // Before marking the own path in use, so a file left at it by an earlier writer is claimed too.
    for (const path of claimOrphans(dir, () => true)) {
      const file = JournalFile.open(path, spoolCodec, true);
      this.replay.push(file);
      this.logger?.warn({ file: path, records: file.remaining }, 'replaying session records spooled by a previous run');
    }
    holdFile(this.ownPath);
    this.schedule();
  }

  /** Records a session being accepted. Synchronous; never throws. */
  recordOpen(record: SessionOpenRecord): void {
    this.record({ kind: 'open', record });
  }

  /** Records a session ending. Synchronous; never throws. */
  recordClose(record: SessionCloseRecord): void {
    this.record({ kind: 'close', record });
  }

  /** Records not yet committed to the database, in memory and on disk. */
  get pending(): number {
    let n = this.inMemory();
    if (this.spool) n += this.spool.remaining;
    for (const f of this.replay) n += f.remaining;
    return n;
  }

  /** False from a failed write until the next successful one. */
  get healthy(): boolean {
    return this.retry.healthy;
  }

  /** True while new records go to the disk spool rather than memory. */
  get spooling(): boolean {
    return this.spool !== null;
  }

  /** Records lost: the spool was over `maxSpoolBytes`, or the disk refused the write. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Records the database refused for good; they are in the `.rejected.ndjson` file. */
  get rejected(): number {
    return this.rejectedCount;
  }

  /**
   * Writes everything pending, without waiting for the batch timer. Resolves true once
   * nothing is pending; after `timeoutMs`, moves what is still in memory to the disk
   * spool (replayed by the next start) and resolves false.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.closed) return this.pending === 0;
    this.flushing++;
    try {
      this.kick();
      if (await this.drained(timeoutMs)) return true;
      this.spill('flush timed out');
      this.spool?.flush();
      this.logger?.warn({ pending: this.pending, file: this.spool?.path }, 'flush timed out; session records left in the spool');
      return false;
    } finally {
      this.flushing--;
    }
  }

  /**
   * Stops writing. Whatever is still pending is left in the spool on disk (call
   * `flush` first to write it). Records that still arrive are appended to the spool file.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.retry.wake();
    try {
      this.spill('closing');
      for (const f of [...this.replay, ...(this.spool ? [this.spool] : [])]) {
        if (f.remaining === 0) f.remove();
        else f.close();
        releaseFile(f.path);
      }
    } catch (err) {
      this.logger?.error({ err }, 'could not save pending session records to the spool');
    }
    releaseFile(this.ownPath);
    this.notifyDrain();
  }

  private record(entry: SpoolEntry): void {
    try {
      if (this.closed) {
        appendFileSync(this.ownPath, encodeEntry(entry), { mode: PRIVATE_FILE_MODE });
        return;
      }
      // Memory holds at most maxPendingRecords; the next record moves them all to disk.
      if (!this.spool && this.inMemory() >= this.maxPending) this.spill('maxPendingRecords reached');
      if (this.spool) {
        this.appendToSpool(entry);
      } else {
        if (this.queue.length === this.head) this.queuedSince = Date.now();
        this.queue.push(entry);
      }
      this.schedule();
    } catch (err) {
      this.droppedCount++;
      this.logger?.error({ err, sessionId: entry.record.id }, 'session record lost: cannot spool it');
    }
  }

  /** Records held in memory: queued, plus the batch being written if it came from the queue. */
  private inMemory(): number {
    const current = this.current?.source.kind === 'memory' ? this.current.entries.length : 0;
    return this.queue.length - this.head + current;
  }

  private appendToSpool(entry: SpoolEntry): void {
    const spool = this.spool!;
    const line = encodeEntry(entry);
    if (spool.bytes + line.length > this.maxSpoolBytes) {
      if (this.droppedCount++ === 0 || this.droppedCount % 10_000 === 0) {
        this.logger?.error({ dropped: this.droppedCount, file: spool.path }, 'spool is full (maxSpoolBytes); session records dropped');
      }
      return;
    }
    spool.buffer(line);
  }

  /** Moves every record held in memory (the batch being retried first) to the end of the own spool file. */
  private spill(reason: string): void {
    const current = this.current?.source.kind === 'memory' ? this.current : null;
    const queued = this.queue.length - this.head;
    if (!current && queued === 0) return;
    if (!this.spool) {
      this.spool = JournalFile.open(this.ownPath, spoolCodec, true);
      this.logger?.warn({ reason, pending: this.pending, file: this.ownPath }, 'spooling session records to disk');
    }
    if (current) {
      // Abandoned: if its write still succeeds, the replay repeats it harmlessly.
      this.current = null;
      for (const e of current.entries) this.appendToSpool(e);
    }
    for (let i = this.head; i < this.queue.length; i++) this.appendToSpool(this.queue[i]!);
    this.queue = [];
    this.head = 0;
    this.spool.flush();
  }

  /** Whether the next batch should be written now rather than after the batch timer. */
  private due(now: number): boolean {
    if (this.flushing > 0 || this.replay.length > 0 || this.spool) return true;
    const queued = this.queue.length - this.head;
    return queued >= this.batchRows || (queued > 0 && now - this.queuedSince >= this.batchMs);
  }

  /** Arms the timer that starts the pump, unless it is running (it picks new records up itself). */
  private schedule(): void {
    if (this.closed || this.pumping) return;
    const queued = this.queue.length - this.head;
    const urgent = queued >= this.batchRows || this.flushing > 0 || this.replay.length > 0 || this.spool !== null;
    if (!urgent && (this.timer || queued === 0)) return;
    const now = Date.now();
    const due = urgent ? now : this.queuedSince + this.batchMs;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerDue = Infinity;
      void this.pump();
    }, Math.max(0, due - now));
  }

  /** Starts a write now (for flush): cuts the batch timer and the retry delay short. */
  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
    this.retry.wake();
    void this.pump();
  }

  /** The single write loop: one batch at a time until nothing is due. */
  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (!this.closed) {
        if (!this.current) {
          if (!this.due(Date.now())) break;
          try {
            this.current = this.nextBatch();
          } catch (err) {
            this.failed(err, 'cannot read the session record spool');
            await this.backoff();
            continue;
          }
          if (!this.current) break;
        }
        const batch = this.current;
        try {
          await this.write(batch.entries);
          if (this.closed) break;
          if (this.current === batch) {
            if (batch.source.kind === 'file') batch.source.file.commit(batch.source.read);
            this.current = null;
          }
          this.succeeded();
        } catch (err) {
          if (this.closed) break;
          if (this.current !== batch) continue; // spilled meanwhile: its records are in the spool now
          this.failed(err, 'session records could not be written; retrying');
          await this.backoff();
        }
        this.notifyDrain();
      }
    } finally {
      this.pumping = false;
      this.notifyDrain();
      this.schedule();
    }
  }

  /** The next batch, oldest records first: claimed files, then memory, then the own spool. */
  private nextBatch(): SpoolBatch | null {
    const bad = (line: string): void => this.reject(line, new Error('malformed spool line'));
    while (this.replay.length > 0) {
      const file = this.replay[0]!;
      const read = file.next(this.batchRows, bad);
      if (read !== null) return { entries: read.items, source: { kind: 'file', file, read } };
      file.remove();
      releaseFile(file.path);
      this.replay.shift();
      this.logger?.info({ file: file.path }, 'spooled session records of a previous run replayed');
    }
    const queued = this.queue.length - this.head;
    if (queued > 0) {
      const n = Math.min(queued, this.batchRows);
      const entries = this.queue.slice(this.head, this.head + n);
      this.head += n;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else {
        // The rest waits for the next window: about one transaction per batchMs.
        this.queuedSince = Date.now();
        if (this.head > 4096 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
      }
      return { entries, source: { kind: 'memory' } };
    }
    if (this.spool) {
      const file = this.spool;
      const read = file.next(this.batchRows, bad);
      if (read !== null) return { entries: read.items, source: { kind: 'file', file, read } };
      file.remove();
      this.spool = null;
      this.logger?.info({ file: file.path }, 'session record spool replayed; back to memory');
    }
    return null;
  }

  /**
   * Writes one batch. When the database refuses it for good, writes its records one by
   * one and sets the refused ones aside; a transient error on the way retries the
   * whole batch (idempotent).
   */
  private write(entries: SpoolEntry[]): Promise<void> {
    return writeIsolating(
      entries,
      (some) => this.store.writeBatch(toRecordBatch(some)),
      (e, err) => this.reject(encodeEntry(e), err)
    );
  }

  private reject(line: string, err: unknown): void {
    this.rejectedCount++;
    this.logger?.error({ err, file: this.rejectedPath }, 'session record rejected by the database; set aside');
    try {
      setAside(this.rejectedPath, line);
    } catch (e) {
      this.droppedCount++;
      this.logger?.error({ err: e }, 'session record lost: cannot write the rejected file');
    }
  }

  private succeeded(): void {
    this.retry.succeeded({ pending: this.pending });
  }

  private failed(err: unknown, msg: string): void {
    this.retry.failed(err, msg, { pending: this.pending });
  }

  /** Waits the retry delay (cut short by `flush` and `close`), then doubles it up to the cap. */
  private async backoff(): Promise<void> {
    try {
      this.spool?.flush();
    } catch (err) {
      this.logger?.error({ err }, 'cannot write the session record spool');
    }
    await this.retry.backoff();
  }

  private isDrained(): boolean {
    return this.current === null && this.pending === 0;
  }

  private async drained(timeoutMs: number): Promise<boolean> {
    await this.drainWaiters.until(() => this.closed || this.isDrained(), timeoutMs);
    return this.isDrained();
  }

  private notifyDrain(): void {
    this.drainWaiters.notify();
  }
}
