import { resolve } from 'node:path';
import { RetryPolicy } from '../store/durable/retry-policy.js';
import { Waiters } from '../store/durable/waiters.js';
import type { StoreLogger } from '../store/store.js';
import type { AuditEntry, AuditSink } from './audit-sink.js';
import type { AuditWriterOptions, AuditWriterStats } from './audit-writer-options.js';
import { AuditBatcher, type AuditBatch } from './audit-batch.js';
import { AuditDestination } from './audit-destination.js';
import { GroupCommitScheduler } from './audit-scheduler.js';
import { writeStopFile } from './audit-stop-file.js';
import { DurabilityWatermark, type SeqRange } from './audit-watermark.js';

export type { AuditWriterOptions, AuditWriterStats } from './audit-writer-options.js';

/**
 * The audit trail's queue and group-commit writer: the `AuditSink` the node uses.
 *
 * Hot path: `record` appends the entry to an array, nothing more (ids, payload
 * serialization and SQL happen in the writer). Rows get a sequence number by position;
 * `afterDurable(fn)` runs `fn` once every row recorded before it is durable, in call
 * order. The parts, by role:
 * - audit-batch.ts: the queue, and taking a batch (ids, payloads);
 * - audit-scheduler.ts: when the next group commit starts (`batchMs`, `asyncWrite`);
 * - audit-destination.ts: where a batch is made durable — the database, else the journal
 *   (audit-journal-log.ts, replayed behind), else held in memory and retried;
 * - audit-watermark.ts: the durability watermark and its waiters;
 * - audit-stop-file.ts: the last resort at `close`.
 * Replays are idempotent (rows keep their id; `writeAudit` skips known ids), so a slow
 * write that commits after all, or a replay cut short by a crash, duplicates nothing.
 */
export class AuditWriter implements AuditSink {
  private readonly async: boolean;
  private readonly batchRows: number;
  private readonly commitsInFlight: number;
  private readonly maxQueue: number;
  /** min(batchRows, maxQueue): from this queue length on, `record` looks at the length. */
  private readonly threshold: number;
  private readonly logger: StoreLogger | undefined;

  private readonly batcher: AuditBatcher;
  private readonly watermark: DurabilityWatermark;
  private readonly scheduler: GroupCommitScheduler;
  private readonly retry: RetryPolicy;
  private readonly dest: AuditDestination;
  /** Flush and close wait here; notified whenever durability or activity changes. */
  private readonly waiters = new Waiters();

  /** Batches being committed now (more than one with `commitsInFlight` > 1). */
  private readonly current = new Set<AuditBatch>();
  /** Commits started by `run` without waiting for them (`commitsInFlight` > 1). */
  private detached = 0;
  private running = false;
  /** `flush` calls in progress: the window does not hold rows back meanwhile. */
  private flushing = 0;
  private closeHooks: Array<() => void | Promise<void>> = [];
  private closed = false;

  constructor(options: AuditWriterOptions) {
    const store = options.store;
    this.async = (options.durability ?? 'ack') === 'async';
    this.batchRows = Math.max(1, options.batchRows ?? 1000);
    this.commitsInFlight = options.asyncWrite === true ? Math.max(1, options.commitsInFlight ?? 1) : 1;
    this.maxQueue = Math.max(1, options.maxQueue ?? 100_000);
    this.threshold = Math.min(this.batchRows, this.maxQueue);
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
    this.dest = new AuditDestination(
      {
        write: options.write ?? ((rows) => store.writeAudit(rows)),
        serverId: options.serverId,
        dir: resolve(options.journalDir ?? './data/journal'),
        key: options.journalKey,
        journalFirst: options.ackFrom === 'journal',
        batchRows: this.batchRows,
        maxQueue: this.maxQueue,
        slowWriteMs: Math.max(1, options.slowWriteMs ?? 200),
        rotateBytes: Math.max(1, options.journalRotateBytes ?? 4 * 1024 * 1024),
        probeMs: Math.max(10, options.probeMs ?? 5000),
        retry: this.retry,
        logger: this.logger
      },
      {
        isClosed: () => this.closed,
        queued: () => this.batcher.queued,
        durable: (range) => this.markDurable(range),
        lost: (range) => {
          this.watermark.lost(range);
          this.waiters.notify();
        },
        changed: () => this.waiters.notify()
      }
    );
  }

  /**
   * Checks that the journal folder is writable (logged, and `healthy` false, when not)
   * and starts replaying the journal files crashed processes left for this database.
   */
  start(): void {
    this.dest.health.probe();
    this.claimOrphans();
  }

  /** Claims orphan journal files of this database and replays them in the background. */
  claimOrphans(): number {
    return this.dest.log.claimOrphans();
  }

  /** Runs `fn` at the end of `close`, in the order added (the retention task, the SQLite thread). */
  onClose(fn: () => void | Promise<void>): void {
    this.closeHooks.push(fn);
  }

  get healthy(): boolean {
    return this.dest.healthy;
  }

  /** Told how long each group commit took, in seconds (the metrics' histogram); null = nobody. */
  onCommit: ((seconds: number) => void) | null = null;

  /** The space budget (`--audit-max-bytes`), set by createAuditSink; null = no cap. */
  budget: { readonly full: boolean; refuseBroadcast(): boolean } | null = null;

  get full(): boolean {
    return this.budget?.full ?? false;
  }

  refuseBroadcast(): boolean {
    return this.budget !== null && this.budget.refuseBroadcast();
  }

  /** Counters (tests, logs). */
  stats(): AuditWriterStats {
    return {
      queued: this.batcher.queued,
      held: this.dest.heldRows,
      mode: this.dest.mode,
      journalBytes: this.dest.log.bytes,
      orphans: this.dest.log.orphanCount,
      rejected: this.dest.rejected,
      dropped: this.dest.dropped,
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
      const batch = this.batcher.take(Infinity);
      this.dest.spill(batch);
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
        if (this.dest.heldBatches > 0) {
          if (!(await this.dest.retryHeld())) {
            await this.retry.backoff();
            continue;
          }
        }
        const queued = this.batcher.queued;
        if (queued === 0) break;
        // Not before the window after the last commit (a full batch does not wait).
        if (this.flushing === 0 && queued < this.batchRows && this.scheduler.waiting) break;
        if (this.commitsInFlight > 1 && this.dest.mode === 'direct') {
          // Several transactions in flight: start this one and go on; its end re-arms.
          if (this.detached >= this.commitsInFlight) {
            slotsFull = true;
            break;
          }
          this.detach(this.batcher.take(this.batchRows));
          continue;
        }
        // In journal mode appends are cheap: take more per turn so the queue keeps up.
        const batch = this.batcher.take(this.dest.mode === 'direct' ? this.batchRows : this.batchRows * 8);
        const started = performance.now();
        this.current.add(batch);
        try {
          await this.dest.commit(batch);
        } catch (err) {
          this.failed(err, batch);
        }
        this.onCommit?.((performance.now() - started) / 1000);
        this.current.delete(batch);
        this.scheduler.committed(started);
      }
    } catch (err) {
      this.logger?.error({ err }, 'audit writer failed');
    } finally {
      this.running = false;
      this.waiters.notify();
    }
    if (!slotsFull && (this.batcher.queued > 0 || this.dest.heldBatches > 0)) this.arm();
  }

  /** Commits a batch without `run` waiting for it (see `commitsInFlight`). */
  private detach(batch: AuditBatch): void {
    this.detached++;
    this.current.add(batch);
    const started = performance.now();
    this.dest.commit(batch)
      .catch((err: unknown) => this.failed(err, batch))
      .finally(() => {
        this.onCommit?.((performance.now() - started) / 1000);
        this.current.delete(batch);
        this.detached--;
        this.scheduler.ended();
        this.waiters.notify();
        if (!this.closed && (this.batcher.queued > 0 || this.dest.heldBatches > 0)) this.arm();
      });
  }

  /**
   * Not a database or journal failure (those are handled where they happen): a bug. The
   * batch is kept and retried rather than lost.
   */
  private failed(err: unknown, batch: AuditBatch): void {
    this.logger?.error({ err }, 'audit writer failed');
    if (!this.closed && batch.end > this.watermark.durable) this.dest.keep(batch);
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
      if (!this.closed && !this.running && (this.batcher.queued > 0 || this.dest.heldBatches > 0)) {
        this.scheduler.clear();
        void this.run();
      }
      await this.waiters.until(() => this.allDurable(), timeoutMs);
      await this.waiters.until(() => !this.dest.log.busy || this.closed, deadline - Date.now());
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
    this.dest.health.stop();
    this.retry.wake();
    // Let a write in progress finish (bounded: a hung database must not hold the stop).
    await this.waiters.until(() => !this.dest.log.busy, 1000);
    await this.waiters.until(() => !this.running && this.detached === 0, 1000);
    this.dest.log.close();
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
    const pending: AuditBatch[] = this.dest.takeHeld();
    for (const b of this.current) if (b.end > this.watermark.durable) pending.push(b);
    if (this.batcher.queued > 0) pending.push(this.batcher.take(Infinity));
    const batches = pending.filter((b) => b.end > this.watermark.durable);
    if (batches.length === 0) return;
    const path = this.dest.log.path.replace(/\.ndjson$/, '.stop.ndjson');
    try {
      writeStopFile(
        path,
        batches.flatMap((b) => b.rows)
      );
      for (const b of batches) this.markDurable(b);
      this.logger?.warn({ rows: batches.reduce((n, b) => n + b.rows.length, 0), file: path }, 'audit rows left in the journal at stop; replayed at the next start');
    } catch (err) {
      for (const b of batches) this.dest.drop(b);
      this.logger?.error({ err }, 'audit rows lost at stop: the journal cannot be written');
    }
  }
}
