import { setAside } from '../store/durable/journal-file.js';
import { writeIsolating } from '../store/durable/permanent-error.js';
import type { RetryPolicy } from '../store/durable/retry-policy.js';
import type { AuditRecord, StoreLogger } from '../store/store.js';
import type { AuditBatch } from './audit-batch.js';
import { encodeJournalLine, rejectedPath } from './audit-journal.js';
import { JournalHealth } from './audit-journal-health.js';
import { AuditJournalLog } from './audit-journal-log.js';
import type { SeqRange } from './audit-watermark.js';

/** What the destination needs of its writer. */
export interface DestinationHost {
  isClosed(): boolean;
  /** Rows recorded and not yet taken (they count against `maxQueue` too). */
  queued(): number;
  /** A batch is durable. */
  durable(range: SeqRange): void;
  /** A batch is lost: its callbacks never run. */
  lost(range: SeqRange): void;
  /** A replay ended (flush and close wait on it). */
  changed(): void;
}

/** Options of {@link AuditDestination}. */
export interface AuditDestinationOptions {
  write: (rows: readonly AuditRecord[]) => Promise<void>;
  serverId: string;
  dir: string;
  key: string;
  journalFirst: boolean;
  batchRows: number;
  maxQueue: number;
  slowWriteMs: number;
  rotateBytes: number;
  probeMs: number;
  retry: RetryPolicy;
  logger: StoreLogger | undefined;
}

const SLOW = Symbol('slow');

/**
 * Where a taken batch is made durable. `direct` mode: the database; a write that fails,
 * or has not committed after `slowWriteMs`, goes to the journal instead and the mode
 * turns to `journal`, where batches are appended to the journal and replayed behind
 * (see AuditJournalLog) until it catches up. A batch neither takes is held in memory and
 * retried; beyond `maxQueue` rows the oldest held ones are dropped.
 */
export class AuditDestination {
  mode: 'direct' | 'journal' = 'direct';
  readonly health: JournalHealth;
  readonly log: AuditJournalLog;
  private held: AuditBatch[] = [];
  private heldRowCount = 0;
  /** Database writes that went over `slowWriteMs` and have not settled yet. */
  private readonly slowWrites = new Set<Promise<unknown>>();
  private lastDropLog = 0;
  private rejectedCount = 0;
  private droppedCount = 0;

  constructor(
    private readonly o: AuditDestinationOptions,
    private readonly host: DestinationHost
  ) {
    this.health = new JournalHealth({
      dir: o.dir,
      key: o.key,
      probeMs: o.probeMs,
      logger: o.logger,
      recheck: () => {
        if (!this.log.open) this.health.probe();
        else if (this.held.length === 0) this.health.succeeded();
      }
    });
    this.log = new AuditJournalLog(
      {
        dir: o.dir,
        key: o.key,
        serverId: o.serverId,
        batchRows: o.batchRows,
        rotateBytes: o.rotateBytes,
        journalFirst: o.journalFirst,
        retry: o.retry,
        logger: o.logger
      },
      {
        isClosed: () => host.isClosed(),
        isJournaling: () => this.mode === 'journal',
        settled: () => this.slowWrites.size === 0 && this.held.length === 0,
        slowWrites: () => (this.slowWrites.size > 0 ? Promise.all(this.slowWrites) : null),
        writeDb: (rows) => this.writeDb(rows),
        caughtUp: () => {
          this.mode = 'direct';
        },
        journalFailed: (err) => this.health.failed(err),
        changed: () => host.changed()
      }
    );
  }

  /** The journal can be written and nothing is held. */
  get healthy(): boolean {
    return this.health.ok && this.held.length === 0;
  }

  /** Batches held in memory, waiting for a retry. */
  get heldBatches(): number {
    return this.held.length;
  }

  /** Rows held in memory. */
  get heldRows(): number {
    return this.heldRowCount;
  }

  get rejected(): number {
    return this.rejectedCount;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  /** Holds a batch a bug left undone (not a database or journal failure), once. */
  keep(batch: AuditBatch): void {
    if (!this.held.includes(batch)) this.hold(batch);
  }

  /** Takes every held batch (the last resort at stop). */
  takeHeld(): AuditBatch[] {
    const held = this.held;
    this.held = [];
    this.heldRowCount = 0;
    return held;
  }

  async commit(batch: AuditBatch): Promise<void> {
    if (this.mode === 'journal' || this.o.journalFirst) {
      this.toJournal(batch);
      return;
    }
    const write = this.writeDb(batch.rows);
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<typeof SLOW>((resolve) => {
      timer = setTimeout(() => resolve(SLOW), this.o.slowWriteMs);
    });
    let outcome: unknown;
    try {
      outcome = await Promise.race([write, slow]);
    } catch (err) {
      clearTimeout(timer);
      // Closed meanwhile: `close` put this batch in the stop file already.
      if (this.host.isClosed()) return;
      this.o.retry.failed(err, 'audit rows cannot be written to the database; journaling them', { queued: this.host.queued() });
      this.mode = 'journal';
      this.toJournal(batch);
      return;
    }
    clearTimeout(timer);
    if (this.host.isClosed() && outcome === SLOW) return;
    if (outcome !== SLOW) {
      this.o.retry.succeeded();
      this.host.durable(batch);
      return;
    }
    // The write may still commit; the journal copy makes the acknowledgement not wait for it.
    const settled: Promise<unknown> = write
      .then(
        () => this.host.durable(batch),
        () => undefined
      )
      .finally(() => {
        this.slowWrites.delete(settled);
      });
    this.slowWrites.add(settled);
    this.o.retry.failed(new Error(`write slower than ${this.o.slowWriteMs} ms`), 'audit database writes are slow; journaling', { queued: this.host.queued() });
    this.mode = 'journal';
    this.toJournal(batch);
  }

  /** One transaction; when the database refuses it for good, row by row, setting the refused ones aside. */
  private writeDb(rows: readonly AuditRecord[]): Promise<void> {
    return writeIsolating(rows, this.o.write, (r, err) => this.reject(r, err));
  }

  private reject(row: AuditRecord, err: unknown): void {
    this.rejectedCount++;
    const path = rejectedPath(this.o.dir, this.o.key);
    this.o.logger?.error({ err, id: row.id, file: path }, 'audit row refused by the database; set aside');
    try {
      setAside(path, encodeJournalLine(row));
    } catch (e) {
      this.droppedCount++;
      this.o.logger?.error({ err: e }, 'audit row lost: cannot write the rejected file');
    }
  }

  /**
   * Appends a batch to the journal and acknowledges it: once `write(2)` returned the
   * bytes are the kernel's, and survive the process (kill -9, a crash). An fdatasync
   * follows in the background, not waited for: waiting would put the disk's flush
   * latency (seconds on a busy disk) in front of every `received`. Held in memory when
   * the journal fails.
   */
  private toJournal(batch: AuditBatch): void {
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
    this.host.durable(batch);
  }

  private hold(batch: AuditBatch): void {
    this.held.push(batch);
    this.heldRowCount += batch.rows.length;
    while (this.heldRowCount + this.host.queued() > this.o.maxQueue && this.held.length > 0) {
      const lost = this.held.shift()!;
      this.heldRowCount -= lost.rows.length;
      this.drop(lost);
    }
  }

  /** Tries the held batches again: the database first, then the journal. True when none is left. */
  async retryHeld(): Promise<boolean> {
    while (this.held.length > 0 && !this.host.isClosed()) {
      const batch = this.held[0]!;
      let ok = false;
      try {
        await this.writeDb(batch.rows);
        ok = true;
        this.o.retry.succeeded();
      } catch (err) {
        this.o.retry.failed(err, 'audit rows cannot be written to the database', { queued: this.host.queued() });
      }
      if (this.held[0] !== batch) continue; // dropped meanwhile
      this.held.shift();
      this.heldRowCount -= batch.rows.length;
      if (ok) {
        this.host.durable(batch);
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
  drop(batch: AuditBatch): void {
    this.droppedCount += batch.rows.length;
    const now = Date.now();
    if (now - this.lastDropLog > 5000) {
      this.lastDropLog = now;
      this.o.logger?.error({ rows: batch.rows.length, dropped: this.droppedCount }, 'audit rows lost: neither the database nor the journal can take them');
    }
    this.host.lost(batch);
  }

  /** The queue reached `maxQueue`: the database is not keeping up; the journal takes it all now. */
  spill(batch: AuditBatch): void {
    if (this.mode === 'direct') this.o.logger?.warn({ rows: batch.rows.length }, 'audit queue full; journaling');
    this.mode = 'journal';
    this.toJournal(batch);
  }
}
