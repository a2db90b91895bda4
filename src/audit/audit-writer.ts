import { resolve } from 'node:path';
import { setAside } from '../store/durable/journal-file.js';
import { writeIsolating } from '../store/durable/permanent-error.js';
import { RetryPolicy } from '../store/durable/retry-policy.js';
import { Waiters } from '../store/durable/waiters.js';
import type { AuditRecord, StoreLogger } from '../store/store.js';
import type { AuditEntry, AuditSink } from './audit-sink.js';
import type { AuditWriterOptions, AuditWriterStats } from './audit-writer-options.js';
import { AuditBatcher, type Batch } from './audit-batch.js';
import { encodeJournalLine, rejectedPath } from './audit-journal.js';
import { JournalHealth } from './audit-journal-health.js';
import { AuditJournalLog } from './audit-journal-log.js';
import { GroupCommitScheduler } from './audit-scheduler.js';
import { writeStopFile } from './audit-stop-file.js';
import { DurabilityWatermark, type SeqRange } from './audit-watermark.js';

export type { AuditWriterOptions, AuditWriterStats } from './audit-writer-options.js';

const SLOW = Symbol('slow');

/**
 * The audit trail's queue and group-commit writer: the `AuditSink` the node uses.
 *
 * Hot path: `record` appends the entry to an array, nothing more (ids, payload
 * serialization and SQL all happen here, in the writer). Rows get a sequence number by
 * position; `afterDurable(fn)` notes the current end of the queue and `fn` runs once every
 * row before it is durable, callbacks in call order.
 *
 * Writing (group commit): the queue is taken as one batch — ids assigned (UUID v7),
 * payloads serialized — and written in one transaction. One batch is in flight at a
 * time; the next one groups whatever arrived meanwhile. With an asynchronous `write`
 * (PostgreSQL) that is the whole policy: a commit starts at the end of the turn in which
 * the writer finds itself idle with rows waiting. A synchronous `write` (SQLite) holds
 * the thread while it commits, so after each commit the next waits as long as that one
 * took, at most `batchMs`: commits take at most about half the thread however busy it
 * is, and a cheap commit adds next to no wait. Either way `batchRows` waiting rows go
 * at once. Two modes:
 * - `direct`: batches go to the database. A write that fails, or that has not committed
 *   after `slowWriteMs`, is appended to this process's journal file instead and
 *   acknowledged from there (once written to the file); the writer switches to `journal`.
 * - `journal`: batches are appended to the journal (cheap, local); a replayer copies the
 *   journal into the database behind them, retrying with backoff. When it has caught up,
 *   the file is deleted and the writer goes back to `direct`.
 * Replays are idempotent (rows keep their id; `writeAudit` skips known ids), so a slow
 * write that commits after all, or a replay cut short by a crash, duplicates nothing.
 *
 * At start, journal files of the same database left by processes that are gone are
 * claimed and replayed in the background. When neither the database nor the journal
 * takes a batch it is held in memory and retried, `healthy` turns false (/readyz), and
 * beyond `maxQueue` rows the oldest held ones are dropped and their callbacks never run.
 */
export class AuditWriter implements AuditSink {
  private readonly write: (rows: readonly AuditRecord[]) => Promise<void>;
  private readonly async: boolean;
  private readonly journalFirst: boolean;
  private readonly batchRows: number;
  private readonly commitsInFlight: number;
  private readonly maxQueue: number;
  /** min(batchRows, maxQueue): from this queue length on, `record` looks at the length. */
  private readonly threshold: number;
  private readonly dir: string;
  private readonly key: string;
  private readonly slowWriteMs: number;
  private readonly logger: StoreLogger | undefined;

  private readonly batcher: AuditBatcher;
  private readonly watermark: DurabilityWatermark;
  private readonly scheduler: GroupCommitScheduler;
  private readonly retry: RetryPolicy;
  private readonly health: JournalHealth;
  private readonly log: AuditJournalLog;
  /** Flush and close wait here; notified whenever durability or activity changes. */
  private readonly waiters = new Waiters();

  private mode: 'direct' | 'journal' = 'direct';
  private held: Batch[] = [];
  private heldRows = 0;
  /** Batches being committed now (more than one with `commitsInFlight` > 1). */
  private readonly current = new Set<Batch>();
  /** Commits started by `run` without waiting for them (`commitsInFlight` > 1). */
  private detached = 0;
  /** Database writes that went over `slowWriteMs` and have not settled yet. */
  private readonly slowWrites = new Set<Promise<unknown>>();
  private running = false;
  /** `flush` calls in progress: the window does not hold rows back meanwhile. */
  private flushing = 0;
  private closeHooks: Array<() => void | Promise<void>> = [];
  private lastDropLog = 0;
  private rejected = 0;
  private dropped = 0;
  private closed = false;

  constructor(options: AuditWriterOptions) {
    const store = options.store;
    this.write = options.write ?? ((rows) => store.writeAudit(rows));
    this.async = (options.durability ?? 'ack') === 'async';
    this.journalFirst = options.ackFrom === 'journal';
    this.batchRows = Math.max(1, options.batchRows ?? 1000);
    this.commitsInFlight = options.asyncWrite === true ? Math.max(1, options.commitsInFlight ?? 1) : 1;
    this.maxQueue = Math.max(1, options.maxQueue ?? 100_000);
    this.threshold = Math.min(this.batchRows, this.maxQueue);
    this.dir = resolve(options.journalDir ?? './data/journal');
    this.key = options.journalKey;
    this.slowWriteMs = Math.max(1, options.slowWriteMs ?? 200);
    this.logger = options.logger;
    const retryMinMs = Math.max(1, options.retryMinMs ?? 100);
    this.retry = new RetryPolicy({
      minMs: retryMinMs,
      maxMs: Math.max(retryMinMs, options.retryMaxMs ?? 2000),
      logger: this.logger,
      recoveredMsg: 'audit rows are being written to the database again'
    });
    this.batcher = new AuditBatcher(options.serverId);
    this.watermark = new DurabilityWatermark(this.logger);
    this.scheduler = new GroupCommitScheduler(options.asyncWrite === true ? 0 : Math.max(0, options.batchMs ?? 5), () => void this.run());
    this.health = new JournalHealth({
      dir: this.dir,
      key: this.key,
      probeMs: Math.max(10, options.probeMs ?? 5000),
      logger: this.logger,
      recheck: () => {
        if (!this.log.open) this.health.probe();
        else if (this.held.length === 0) this.health.succeeded();
      }
    });
    this.log = new AuditJournalLog(
      {
        dir: this.dir,
        key: this.key,
        serverId: options.serverId,
        batchRows: this.batchRows,
        rotateBytes: Math.max(1, options.journalRotateBytes ?? 4 * 1024 * 1024),
        journalFirst: this.journalFirst,
        retry: this.retry,
        logger: this.logger
      },
      {
        isClosed: () => this.closed,
        isJournaling: () => this.mode === 'journal',
        settled: () => this.slowWrites.size === 0 && this.held.length === 0,
        slowWrites: () => (this.slowWrites.size > 0 ? Promise.all(this.slowWrites) : null),
        writeDb: (rows) => this.writeDb(rows),
        caughtUp: () => {
          this.mode = 'direct';
        },
        journalFailed: (err) => this.health.failed(err),
        changed: () => this.waiters.notify()
      }
    );
  }

  /**
   * Checks that the journal folder is writable (logged, and `healthy` false, when not)
   * and starts replaying the journal files crashed processes left for this database.
   */
  start(): void {
    this.health.probe();
    this.claimOrphans();
  }

  /** Claims orphan journal files of this database and replays them in the background. */
  claimOrphans(): number {
    return this.log.claimOrphans();
  }

  /** Runs `fn` at the end of `close`, in the order added (the retention task, the SQLite thread). */
  onClose(fn: () => void | Promise<void>): void {
    this.closeHooks.push(fn);
  }

  get healthy(): boolean {
    return this.health.ok && this.held.length === 0;
  }

  /** Counters (tests, logs). */
  stats(): AuditWriterStats {
    return {
      queued: this.batcher.queued,
      held: this.heldRows,
      mode: this.mode,
      journalBytes: this.log.bytes,
      orphans: this.log.orphanCount,
      rejected: this.rejected,
      dropped: this.dropped,
      batches: this.batcher.batches
    };
  }

  // ---- hot path -------------------------------------------------------------------

  record(entry: AuditEntry): void {
    const n = this.batcher.push(entry);
    if (n === 1) this.arm();
    else if (n >= this.threshold) this.grown(n);
  }

  afterDurable(fn: () => void): void {
    if (this.async) fn();
    else this.watermark.wait(this.batcher.recorded, fn);
  }

  // ---- batching -------------------------------------------------------------------

  private arm(): void {
    if (this.closed) {
      this.lastResort();
      return;
    }
    if (!this.running) this.scheduler.arm();
  }

  private grown(n: number): void {
    if (n >= this.maxQueue) {
      this.spill();
      return;
    }
    // A full batch need not wait for the window.
    if (n === this.batchRows && !this.running) this.scheduler.now();
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    // Every transaction slot is taken: the end of one re-arms; arming here would spin.
    let slotsFull = false;
    try {
      while (!this.closed) {
        if (this.held.length > 0) {
          if (!(await this.retryHeld())) {
            await this.retry.backoff();
            continue;
          }
        }
        const queued = this.batcher.queued;
        if (queued === 0) break;
        // Not before the window after the last commit (a full batch does not wait).
        if (this.flushing === 0 && queued < this.batchRows && this.scheduler.waiting) break;
        if (this.commitsInFlight > 1 && this.mode === 'direct') {
          // Several transactions in flight: start this one and go on; its end re-arms.
          if (this.detached >= this.commitsInFlight) {
            slotsFull = true;
            break;
          }
          this.detach(this.batcher.take(this.batchRows));
          continue;
        }
        // In journal mode appends are cheap: take more per turn so the queue keeps up.
        const batch = this.batcher.take(this.mode === 'direct' ? this.batchRows : this.batchRows * 8);
        const started = performance.now();
        this.current.add(batch);
        try {
          await this.commit(batch);
        } catch (err) {
          this.failed(err, batch);
        }
        this.current.delete(batch);
        this.scheduler.committed(started);
      }
    } catch (err) {
      this.logger?.error({ err }, 'audit writer failed');
    } finally {
      this.running = false;
      this.waiters.notify();
    }
    if (!slotsFull && (this.batcher.queued > 0 || this.held.length > 0)) this.arm();
  }

  /** Commits a batch without `run` waiting for it (see `commitsInFlight`). */
  private detach(batch: Batch): void {
    this.detached++;
    this.current.add(batch);
    this.commit(batch)
      .catch((err: unknown) => this.failed(err, batch))
      .finally(() => {
        this.current.delete(batch);
        this.detached--;
        this.scheduler.ended();
        this.waiters.notify();
        if (!this.closed && (this.batcher.queued > 0 || this.held.length > 0)) this.arm();
      });
  }

  /**
   * Not a database or journal failure (those are handled where they happen): a bug. The
   * batch is kept and retried rather than lost.
   */
  private failed(err: unknown, batch: Batch): void {
    this.logger?.error({ err }, 'audit writer failed');
    if (!this.closed && batch.end > this.watermark.durable && !this.held.includes(batch)) this.hold(batch);
  }

  private async commit(batch: Batch): Promise<void> {
    if (this.mode === 'journal' || this.journalFirst) {
      this.toJournal(batch);
      return;
    }
    const write = this.writeDb(batch.rows);
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<typeof SLOW>((resolve) => {
      timer = setTimeout(() => resolve(SLOW), this.slowWriteMs);
    });
    let outcome: unknown;
    try {
      outcome = await Promise.race([write, slow]);
    } catch (err) {
      clearTimeout(timer);
      // Closed meanwhile: `close` put this batch in the stop file already.
      if (this.closed) return;
      this.retry.failed(err, 'audit rows cannot be written to the database; journaling them', { queued: this.batcher.queued });
      this.mode = 'journal';
      this.toJournal(batch);
      return;
    }
    clearTimeout(timer);
    if (this.closed && outcome === SLOW) return;
    if (outcome !== SLOW) {
      this.retry.succeeded();
      this.markDurable(batch);
      return;
    }
    // The write may still commit; the journal copy makes the acknowledgement not wait for it.
    const settled: Promise<unknown> = write
      .then(
        () => this.markDurable(batch),
        () => undefined
      )
      .finally(() => {
        this.slowWrites.delete(settled);
      });
    this.slowWrites.add(settled);
    this.retry.failed(new Error(`write slower than ${this.slowWriteMs} ms`), 'audit database writes are slow; journaling', { queued: this.batcher.queued });
    this.mode = 'journal';
    this.toJournal(batch);
  }

  /** One transaction; when the database refuses it for good, row by row, setting the refused ones aside. */
  private writeDb(rows: readonly AuditRecord[]): Promise<void> {
    return writeIsolating(rows, this.write, (r, err) => this.reject(r, err));
  }

  private reject(row: AuditRecord, err: unknown): void {
    this.rejected++;
    const path = rejectedPath(this.dir, this.key);
    this.logger?.error({ err, id: row.id, file: path }, 'audit row refused by the database; set aside');
    try {
      setAside(path, encodeJournalLine(row));
    } catch (e) {
      this.dropped++;
      this.logger?.error({ err: e }, 'audit row lost: cannot write the rejected file');
    }
  }

  /**
   * Appends a batch to the journal and acknowledges it: once `write(2)` returned the
   * bytes are the kernel's, and survive the process (kill -9, a crash). An fdatasync
   * follows in the background, not waited for: waiting would put the disk's flush
   * latency (seconds on a busy disk) in front of every `received`. Held in memory when
   * the journal fails.
   */
  private toJournal(batch: Batch): void {
    try {
      this.log.append(batch.rows);
    } catch (err) {
      this.health.failed(err);
      this.hold(batch);
      return;
    }
    this.health.succeeded();
    // Rows in the journal are to be replayed: journal mode until the replay catches up.
    this.mode = 'journal';
    this.markDurable(batch);
  }

  // ---- held batches ---------------------------------------------------------------

  private hold(batch: Batch): void {
    this.held.push(batch);
    this.heldRows += batch.rows.length;
    while (this.heldRows + this.batcher.queued > this.maxQueue && this.held.length > 0) {
      const lost = this.held.shift()!;
      this.heldRows -= lost.rows.length;
      this.drop(lost);
    }
  }

  /** Tries the held batches again: the database first, then the journal. True when none is left. */
  private async retryHeld(): Promise<boolean> {
    while (this.held.length > 0 && !this.closed) {
      const batch = this.held[0]!;
      let ok = false;
      try {
        await this.writeDb(batch.rows);
        ok = true;
        this.retry.succeeded();
      } catch (err) {
        this.retry.failed(err, 'audit rows cannot be written to the database', { queued: this.batcher.queued });
      }
      if (this.held[0] !== batch) continue; // dropped meanwhile
      this.held.shift();
      this.heldRows -= batch.rows.length;
      if (ok) {
        this.markDurable(batch);
        if (this.held.length === 0) this.health.succeeded();
        continue;
      }
      this.toJournal(batch); // holds it again if the journal still fails
      if (this.held.includes(batch)) return false;
    }
    if (this.mode === 'journal' && !this.log.hasFiles && this.held.length === 0) this.mode = 'direct';
    return this.held.length === 0;
  }

  /** Rows that can be kept nowhere: counted, logged, their callbacks discarded. */
  private drop(batch: Batch): void {
    this.dropped += batch.rows.length;
    const now = Date.now();
    if (now - this.lastDropLog > 5000) {
      this.lastDropLog = now;
      this.logger?.error({ rows: batch.rows.length, dropped: this.dropped }, 'audit rows lost: neither the database nor the journal can take them');
    }
    this.watermark.lost(batch);
    this.waiters.notify();
  }

  /** The queue reached `maxQueue`: the database is not keeping up; the journal takes it all now. */
  private spill(): void {
    const batch = this.batcher.take(Infinity);
    if (this.mode === 'direct') this.logger?.warn({ rows: batch.rows.length }, 'audit queue full; journaling');
    this.mode = 'journal';
    this.toJournal(batch);
  }

  private markDurable(range: SeqRange): void {
    this.watermark.done(range);
    this.waiters.notify();
  }

  // ---- shutdown -------------------------------------------------------------------

  /** Whether every row recorded so far is durable (database or journal). */
  private allDurable(): boolean {
    return this.watermark.durable >= this.batcher.recorded;
  }

  /**
   * Writes out what is queued now and waits, up to `timeoutMs`, for it to be durable and
   * for the journals to be replayed into the database. True when every row recorded is
   * durable (rows left in a journal are replayed at the next start).
   */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    this.flushing++;
    // Backoffs are cut short while flushing: a retry comes every few milliseconds.
    const unhurry = this.retry.hurry();
    try {
      if (!this.closed && !this.running && (this.batcher.queued > 0 || this.held.length > 0)) {
        this.scheduler.clear();
        void this.run();
      }
      await this.waiters.until(() => this.allDurable(), timeoutMs);
      await this.waiters.until(() => !this.log.busy || this.closed, deadline - Date.now());
    } finally {
      unhurry();
      this.flushing--;
    }
    return this.allDurable();
  }

  /**
   * Stops the writer. Rows not yet durable (a write still hanging, a journal that failed
   * earlier) are appended to the journal synchronously as a last resort; a journal that
   * was not fully replayed stays on disk for the next start.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.scheduler.clear();
    this.health.stop();
    this.retry.wake();
    // Let a write in progress finish (bounded: a hung database must not hold the stop).
    await this.waiters.until(() => !this.log.busy, 1000);
    await this.waiters.until(() => !this.running && this.detached === 0, 1000);
    this.log.close();
    this.lastResort();
    for (const hook of this.closeHooks) {
      try {
        await hook();
      } catch (err) {
        this.logger?.error({ err }, 'audit close hook failed');
      }
    }
  }

  /**
   * After close: whatever is not durable goes to the stop file, synchronously (write +
   * fdatasync). Used by `close` and by `record` calls that come after it.
   */
  private lastResort(): void {
    const pending: Batch[] = [...this.held];
    for (const b of this.current) if (b.end > this.watermark.durable) pending.push(b);
    if (this.batcher.queued > 0) pending.push(this.batcher.take(Infinity));
    const batches = pending.filter((b) => b.end > this.watermark.durable);
    this.held = [];
    this.heldRows = 0;
    if (batches.length === 0) return;
    const path = this.log.path.replace(/\.ndjson$/, '.stop.ndjson');
    try {
      writeStopFile(
        path,
        batches.flatMap((b) => b.rows)
      );
      for (const b of batches) this.markDurable(b);
      this.logger?.warn({ rows: batches.reduce((n, b) => n + b.rows.length, 0), file: path }, 'audit rows left in the journal at stop; replayed at the next start');
    } catch (err) {
      for (const b of batches) this.drop(b);
      this.logger?.error({ err }, 'audit rows lost at stop: the journal cannot be written');
    }
  }
}
