import { appendFileSync, fdatasyncSync, mkdirSync, openSync, closeSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AuditEntry, AuditSink } from './audit-sink.js';
import { encodePayload, type EncodedPayload } from './audit-payload.js';
import {
  JournalFile,
  claimOrphanJournals,
  encodeJournalLine,
  ownJournalPath,
  rejectedPath,
  removeFile
} from './audit-journal.js';
import { uuidV7Batch } from '../protocol/ids.js';
import type { AuditRecord, Store, StoreLogger } from '../store/store.js';

/** Options of {@link AuditWriter}. Every time is in milliseconds. */
export interface AuditWriterOptions {
  /** Where the rows go; open it before constructing the writer. Required. */
  store: Store;
  /** Writes a batch in one transaction, idempotent by id. Default `store.writeAudit`. */
  write?: (rows: readonly AuditRecord[]) => Promise<void>;
  /** This server's id: `audit.server_id`, and part of the journal file name. Required. */
  serverId: string;
  /** `ack`: `afterDurable` waits for the rows; `async`: it calls back at once. Default `ack`. */
  durability?: 'ack' | 'async';
  /**
   * Where rows count as durable in normal operation. `database`: committed there (the
   * journal only takes over when the database is slow or down). `journal`: appended to
   * this process's journal, which a background replayer copies into the database in
   * batches of `batchRows` — an acknowledgement then costs a local `write(2)`, not a
   * database round trip. Default `database`.
   */
  ackFrom?: 'database' | 'journal';
  /** The longest gap between two commits of a synchronous `write` (see `#window`): a row waits at most this long. 0 = commit every turn of the event loop. Default 5. */
  batchMs?: number;
  /**
   * Whether `write` is asynchronous (PostgreSQL): then a commit starts as soon as the
   * writer is idle, and rows recorded while one is in flight go together in the next —
   * group commit without a timer, so a quiet server adds no delay and a busy one batches
   * by itself. False: the window of `batchMs` (see `#window`). Default false.
   */
  asyncWrite?: boolean;
  /**
   * With an asynchronous `write`: transactions in flight at once. A batch starts while
   * earlier ones commit, so a row waits for one commit, not for the one in flight and
   * then its own (the database groups concurrent commits into one flush). Batches may
   * then commit out of order; durability is acknowledged in order all the same. Ignored
   * for a synchronous `write`. Default 1.
   */
  commitsInFlight?: number;
  /**
   * A journal file still being appended to is set aside for its replay to finish (and
   * then deleted) once it is this large, and appends go to a new file: under steady
   * traffic the file in use is never empty, so it would otherwise never be deleted.
   * Default 4 MiB.
   */
  journalRotateBytes?: number;
  /** Most rows in one database transaction; a queue this long is written at once. Default 1000. */
  batchRows?: number;
  /** Rows held in memory (queued, or refused by both the database and the journal) before the journal takes them all at once; beyond it, with the journal failing too, the oldest are dropped. Default 100000. */
  maxQueue?: number;
  /** Folder of the journal; must be local to the host. Default `./data/journal`. */
  journalDir?: string;
  /** The database's journal key (`journalKey(url)`): only files with it are replayed here. Required. */
  journalKey: string;
  /** A database write that has not committed after this long is journaled and acknowledged from there. Default 200. */
  slowWriteMs?: number;
  /** First retry delay after a failure; it doubles up to `retryMaxMs`. Default 100. */
  retryMinMs?: number;
  /** Cap of the retry delay. Default 2000. */
  retryMaxMs?: number;
  /** How often a failed journal is probed again for /readyz. Default 5000. */
  probeMs?: number;
  /** Structured logger (pino fits). Default: none. */
  logger?: StoreLogger;
}

/** A run of rows with consecutive sequence numbers [start, end), serialized. */
interface Batch {
  start: number;
  end: number;
  rows: AuditRecord[];
}

/** Counters for tests, logs and the benchmark. */
export interface AuditWriterStats {
  /** Rows recorded and not yet taken by the writer. */
  queued: number;
  /** Rows neither the database nor the journal took yet (retried). */
  held: number;
  /** `direct` (rows go to the database) or `journal` (to the journal, replayed behind). */
  mode: 'direct' | 'journal';
  /** Bytes in this process's journal file (0 when there is none). */
  journalBytes: number;
  /** Orphan journal files of crashed processes still being replayed. */
  orphans: number;
  /** Rows the database refused for good (set aside in the rejected file). */
  rejected: number;
  /** Rows lost: over `maxQueue` while neither the database nor the journal could take them. */
  dropped: number;
  /** Batches taken from the queue so far (one transaction or journal append each). */
  batches: number;
}

/** PostgreSQL classes 22 (data exception) and 23 (integrity); SQLite constraint and type errors. */
function isPermanent(err: unknown): boolean {
  if (err instanceof RangeError || err instanceof TypeError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  if (/^2[23][0-9A-Z]{3}$/.test(code)) return true;
  return code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG';
}

const SLOW = Symbol('slow');

/**
 * Journal files some writer of this process holds (its own, and the orphans it is
 * replaying): never claimed by another writer of the same process (tests run several
 * nodes in one process; an agent's workers are separate processes).
 */
const LIVE_JOURNALS = new Set<string>();

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
  readonly #write: (rows: readonly AuditRecord[]) => Promise<void>;
  readonly #serverId: string;
  readonly #async: boolean;
  readonly #journalFirst: boolean;
  /** The cap of the window: `batchMs`, or 0 with an asynchronous write. */
  readonly #batchMs: number;
  readonly #batchRows: number;
  readonly #commitsInFlight: number;
  readonly #rotateBytes: number;
  readonly #maxQueue: number;
  /** min(batchRows, maxQueue): from this queue length on, `record` looks at the length. */
  readonly #threshold: number;
  readonly #dir: string;
  readonly #key: string;
  readonly #slowWriteMs: number;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #probeMs: number;
  readonly #logger: StoreLogger | undefined;

  #queue: AuditEntry[] = [];
  /** Sequence number of `#queue[0]`: rows taken from the queue so far. */
  #taken = 0;
  /** Every row with a sequence number below this is durable (or was dropped). */
  #durable = 0;
  /** Batches made durable ahead of an earlier one, sorted by start. */
  #doneAhead: Array<{ start: number; end: number }> = [];
  #waiters: Array<{ seq: number; fn: () => void }> = [];
  #waiterHead = 0;

  #mode: 'direct' | 'journal' = 'direct';
  #journal: JournalFile | null = null;
  /** Rotated journal files: no longer appended to, replayed (oldest first) and then deleted. */
  #sealed: JournalFile[] = [];
  /** The next journal file's number (see ownJournalPath). */
  #journalSeq = 0;
  readonly #journalPath: string;
  /** Appended since the last fdatasync started. */
  #journalDirty = false;
  #syncing = false;
  #held: Batch[] = [];
  #heldRows = 0;
  /** Batches being committed now (more than one with `commitsInFlight` > 1). */
  readonly #current = new Set<Batch>();
  /** Commits started by `#run` without waiting for them (`commitsInFlight` > 1). */
  #detached = 0;
  /** Database writes that went over `slowWriteMs` and have not settled yet. */
  readonly #slowWrites = new Set<Promise<unknown>>();

  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;
  #running = false;
  #lastCommitEnd = -Infinity;
  /** How long the last commit took (for a synchronous write: how long it held the thread). */
  #lastCommitMs = 0;
  /** `flush` calls in progress: the window does not hold rows back meanwhile. */
  #flushing = 0;
  #batches = 0;
  #replaying: Promise<void> | null = null;
  #orphans: string[] = [];
  #orphanTask: Promise<void> | null = null;
  #retryMs: number;
  readonly #sleepers = new Set<() => void>();
  #probeTimer: NodeJS.Timeout | null = null;
  #closeHooks: Array<() => void | Promise<void>> = [];

  #journalError: string | null = null;
  #dbFailingSince = 0;
  #lastDbLog = 0;
  #lastDropLog = 0;
  #rejected = 0;
  #dropped = 0;
  #closed = false;
  #lastPayload: unknown = undefined;
  #lastEncoded: EncodedPayload = { json: null, bin: null };

  constructor(options: AuditWriterOptions) {
    const store = options.store;
    this.#write = options.write ?? ((rows) => store.writeAudit(rows));
    this.#serverId = options.serverId;
    this.#async = (options.durability ?? 'ack') === 'async';
    this.#journalFirst = options.ackFrom === 'journal';
    this.#batchMs = options.asyncWrite === true ? 0 : Math.max(0, options.batchMs ?? 5);
    this.#batchRows = Math.max(1, options.batchRows ?? 1000);
    this.#commitsInFlight = options.asyncWrite === true ? Math.max(1, options.commitsInFlight ?? 1) : 1;
    this.#rotateBytes = Math.max(1, options.journalRotateBytes ?? 4 * 1024 * 1024);
    this.#maxQueue = Math.max(1, options.maxQueue ?? 100_000);
    this.#threshold = Math.min(this.#batchRows, this.#maxQueue);
    this.#dir = resolve(options.journalDir ?? './data/journal');
    this.#key = options.journalKey;
    this.#slowWriteMs = Math.max(1, options.slowWriteMs ?? 200);
    this.#retryMinMs = Math.max(1, options.retryMinMs ?? 100);
    this.#retryMaxMs = Math.max(this.#retryMinMs, options.retryMaxMs ?? 2000);
    this.#probeMs = Math.max(10, options.probeMs ?? 5000);
    this.#retryMs = this.#retryMinMs;
    this.#logger = options.logger;
    this.#journalPath = ownJournalPath(this.#dir, this.#key, this.#serverId);
    LIVE_JOURNALS.add(this.#journalPath);
  }

  /**
   * Checks that the journal folder is writable (logged, and `healthy` false, when not)
   * and starts replaying the journal files crashed processes left for this database.
   */
  start(): void {
    this.#probeJournal();
    this.claimOrphans();
  }

  /** Claims orphan journal files of this database and replays them in the background. */
  claimOrphans(): number {
    let claimed: string[] = [];
    try {
      claimed = claimOrphanJournals(this.#dir, this.#key, LIVE_JOURNALS);
      for (const path of claimed) LIVE_JOURNALS.add(path);
    } catch (err) {
      this.#logger?.error({ err, dir: this.#dir }, 'cannot read the audit journal folder');
    }
    if (claimed.length > 0) {
      this.#logger?.warn({ files: claimed }, 'replaying audit journal files left by a previous run');
      this.#orphans.push(...claimed);
      this.#orphanTask ??= this.#replayOrphans().finally(() => {
        this.#orphanTask = null;
      });
    }
    return claimed.length;
  }

  /** Runs `fn` at the end of `close`, in the order added (the retention task, the SQLite thread). */
  onClose(fn: () => void | Promise<void>): void {
    this.#closeHooks.push(fn);
  }

  get healthy(): boolean {
    return this.#journalError === null && this.#held.length === 0;
  }

  /** Counters (tests, logs). */
  stats(): AuditWriterStats {
    return {
      queued: this.#queue.length,
      held: this.#heldRows,
      mode: this.#mode,
      journalBytes: this.#sealed.reduce((n, f) => n + f.bytes, this.#journal?.bytes ?? 0),
      orphans: this.#orphans.length,
      rejected: this.#rejected,
      dropped: this.#dropped,
      batches: this.#batches
    };
  }

  // ---- hot path -------------------------------------------------------------------

  record(entry: AuditEntry): void {
    const n = this.#queue.push(entry);
    if (n === 1) this.#arm();
    else if (n >= this.#threshold) this.#grown(n);
  }

  afterDurable(fn: () => void): void {
    if (this.#async) {
      fn();
      return;
    }
    const seq = this.#taken + this.#queue.length;
    if (seq <= this.#durable) fn();
    else this.#waiters.push({ seq, fn });
  }

  // ---- batching -------------------------------------------------------------------

  #arm(): void {
    if (this.#closed) {
      this.#lastResort();
      return;
    }
    if (this.#timer !== null || this.#immediate !== null || this.#running) return;
    // At the end of this turn, or once the window after the last commit has passed.
    const wait = this.#lastCommitEnd + this.#window() - performance.now();
    // Under a millisecond a timer would wait a whole one (its granularity): go now.
    if (wait < 1) this.#immediate = setImmediate(this.#tick);
    else this.#timer = setTimeout(this.#tick, wait);
  }

  #grown(n: number): void {
    if (n >= this.#maxQueue) {
      this.#spill();
      return;
    }
    if (n === this.#batchRows && !this.#running && this.#immediate === null) {
      // A full batch need not wait for the window (but never runs inside the caller's turn).
      this.#clearTimer();
      this.#immediate = setImmediate(this.#tick);
    }
  }

  /**
   * How long after a commit the next may start. Asynchronous writes: 0 (the commit in
   * flight is the window). Synchronous ones: as long as the last commit held the thread,
   * at most `batchMs` — commits then take at most about half of the thread, and cheap
   * ones (under a millisecond, the usual case) add no wait before `received`.
   */
  #window(): number {
    return Math.min(this.#batchMs, this.#lastCommitMs);
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
  }

  readonly #tick = (): void => {
    this.#timer = null;
    this.#immediate = null;
    void this.#run();
  };

  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    // Every transaction slot is taken: the end of one re-arms; arming here would spin.
    let slotsFull = false;
    try {
      while (!this.#closed) {
        if (this.#held.length > 0) {
          if (!(await this.#retryHeld())) {
            await this.#sleep(this.#nextDelay());
            continue;
          }
        }
        if (this.#queue.length === 0) break;
        // Not before the window after the last commit (a full batch does not wait).
        if (this.#flushing === 0 && this.#queue.length < this.#batchRows && this.#lastCommitEnd + this.#window() - performance.now() >= 1) break;
        if (this.#commitsInFlight > 1 && this.#mode === 'direct') {
          // Several transactions in flight: start this one and go on; its end re-arms.
          if (this.#detached >= this.#commitsInFlight) {
            slotsFull = true;
            break;
          }
          this.#detach(this.#take(this.#batchRows));
          continue;
        }
        // In journal mode appends are cheap: take more per turn so the queue keeps up.
        const batch = this.#take(this.#mode === 'direct' ? this.#batchRows : this.#batchRows * 8);
        const started = performance.now();
        this.#current.add(batch);
        try {
          await this.#commit(batch);
        } catch (err) {
          this.#failed(err, batch);
        }
        this.#current.delete(batch);
        this.#lastCommitEnd = performance.now();
        this.#lastCommitMs = this.#lastCommitEnd - started;
      }
    } catch (err) {
      this.#logger?.error({ err }, 'audit writer failed');
    } finally {
      this.#running = false;
    }
    if (!slotsFull && (this.#queue.length > 0 || this.#held.length > 0)) this.#arm();
  }

  /** Commits a batch without `#run` waiting for it (see `commitsInFlight`). */
  #detach(batch: Batch): void {
    this.#detached++;
    this.#current.add(batch);
    this.#commit(batch)
      .catch((err: unknown) => this.#failed(err, batch))
      .finally(() => {
        this.#current.delete(batch);
        this.#detached--;
        this.#lastCommitEnd = performance.now();
        if (!this.#closed && (this.#queue.length > 0 || this.#held.length > 0)) this.#arm();
      });
  }

  /**
   * Not a database or journal failure (those are handled where they happen): a bug. The
   * batch is kept and retried rather than lost.
   */
  #failed(err: unknown, batch: Batch): void {
    this.#logger?.error({ err }, 'audit writer failed');
    if (!this.#closed && batch.end > this.#durable && !this.#held.includes(batch)) this.#hold(batch);
  }

  /** Takes up to `max` queued entries as a batch: ids assigned, payloads serialized. */
  #take(max: number): Batch {
    const q = this.#queue;
    let entries: AuditEntry[];
    if (q.length <= max) {
      entries = q;
      this.#queue = [];
    } else {
      entries = q.splice(0, max);
    }
    const start = this.#taken;
    this.#taken += entries.length;
    this.#batches++;
    const rows: AuditRecord[] = new Array(entries.length);
    const ids = uuidV7Batch(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      // A broadcast's `in` and `out` rows share one payload object: serialize it once.
      if (e.payload !== this.#lastPayload || i === 0) {
        this.#lastPayload = e.payload;
        this.#lastEncoded = encodePayload(e.payload);
      }
      rows[i] = {
        id: ids[i]!,
        messageId: e.messageId,
        at: e.at,
        serverId: this.#serverId,
        sessionId: e.sessionId,
        userId: e.userId,
        direction: e.direction,
        type: e.type,
        channel: e.channel,
        recipients: e.recipients,
        payload: this.#lastEncoded.json,
        payloadBin: this.#lastEncoded.bin
      };
    }
    this.#lastPayload = undefined;
    return { start, end: this.#taken, rows };
  }

  async #commit(batch: Batch): Promise<void> {
    if (this.#mode === 'journal' || this.#journalFirst) {
      this.#toJournal(batch);
      return;
    }
    const write = this.#writeDb(batch.rows);
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<typeof SLOW>((resolve) => {
      timer = setTimeout(() => resolve(SLOW), this.#slowWriteMs);
    });
    let outcome: unknown;
    try {
      outcome = await Promise.race([write, slow]);
    } catch (err) {
      clearTimeout(timer);
      // Closed meanwhile: `close` put this batch in the stop file already.
      if (this.#closed) return;
      this.#dbFailed(err, 'audit rows cannot be written to the database; journaling them');
      this.#enterJournalMode();
      this.#toJournal(batch);
      return;
    }
    clearTimeout(timer);
    if (this.#closed && outcome === SLOW) return;
    if (outcome !== SLOW) {
      this.#dbSucceeded();
      this.#markDurable(batch);
      return;
    }
    // The write may still commit; the journal copy makes the acknowledgement not wait for it.
    const settled: Promise<unknown> = write
      .then(
        () => this.#markDurable(batch),
        () => undefined
      )
      .finally(() => {
        this.#slowWrites.delete(settled);
      });
    this.#slowWrites.add(settled);
    this.#dbFailed(new Error(`write slower than ${this.#slowWriteMs} ms`), 'audit database writes are slow; journaling');
    this.#enterJournalMode();
    this.#toJournal(batch);
  }

  /** One transaction; when the database refuses it for good, row by row, setting the refused ones aside. */
  async #writeDb(rows: readonly AuditRecord[]): Promise<void> {
    try {
      await this.#write(rows);
    } catch (err) {
      if (!isPermanent(err)) throw err;
      for (const r of rows) {
        try {
          await this.#write([r]);
        } catch (one) {
          if (!isPermanent(one)) throw one;
          this.#reject(r, one);
        }
      }
    }
  }

  #reject(row: AuditRecord, err: unknown): void {
    this.#rejected++;
    const path = rejectedPath(this.#dir, this.#key);
    this.#logger?.error({ err, id: row.id, file: path }, 'audit row refused by the database; set aside');
    try {
      mkdirSync(this.#dir, { recursive: true });
      appendFileSync(path, encodeJournalLine(row));
    } catch (e) {
      this.#dropped++;
      this.#logger?.error({ err: e }, 'audit row lost: cannot write the rejected file');
    }
  }

  // ---- journal --------------------------------------------------------------------

  #enterJournalMode(): void {
    this.#mode = 'journal';
  }

  /**
   * Appends a batch to the journal and acknowledges it: once `write(2)` returned the
   * bytes are the kernel's, and survive the process (kill -9, a crash). An fdatasync
   * follows in the background, not waited for: waiting would put the disk's flush
   * latency (seconds on a busy disk) in front of every `received`. Held in memory when
   * the journal fails.
   */
  #toJournal(batch: Batch): void {
    try {
      this.#journal ??= this.#openJournal();
      let text = '';
      for (const r of batch.rows) text += encodeJournalLine(r);
      this.#journal.append(text);
    } catch (err) {
      this.#journalFailed(err);
      this.#hold(batch);
      return;
    }
    this.#journalSucceeded();
    // Rows in the journal are to be replayed: journal mode until the replay catches up.
    this.#enterJournalMode();
    this.#markDurable(batch);
    this.#journalDirty = true;
    this.#syncJournal();
    this.#startReplay();
  }

  /** A new journal file to append to, under a name no file on disk has. */
  #openJournal(): JournalFile {
    const file = JournalFile.open(ownJournalPath(this.#dir, this.#key, this.#serverId, this.#journalSeq), this.#dir);
    this.#journalSeq++;
    LIVE_JOURNALS.add(file.path);
    return file;
  }

  /** Deletes a journal file that is all in the database. */
  #dropJournal(file: JournalFile): void {
    file.remove();
    if (file.path !== this.#journalPath) LIVE_JOURNALS.delete(file.path);
  }

  /** One fdatasync at a time, covering every append before it; bounds what a power loss can take. */
  #syncJournal(): void {
    const file = this.#journal;
    if (this.#syncing || !this.#journalDirty || file === null) return;
    this.#syncing = true;
    this.#journalDirty = false;
    file.sync().then(
      () => {
        this.#syncing = false;
        this.#syncJournal();
      },
      (err: unknown) => {
        this.#syncing = false;
        this.#journalFailed(err);
      }
    );
  }

  #startReplay(): void {
    if (this.#replaying !== null || this.#closed) return;
    this.#replaying = this.#replayOwn().finally(() => {
      this.#replaying = null;
    });
  }

  /** Copies this process's journal into the database, behind the appends; back to `direct` once caught up. */
  async #replayOwn(): Promise<void> {
    await this.#sleep(this.#retryMs);
    // One batch per transaction: a long one would hold the write lock the main
    // thread's own SQLite writes wait for.
    const chunk = this.#batchRows;
    while (!this.#closed && this.#mode === 'journal') {
      if (this.#slowWrites.size > 0) await Promise.all(this.#slowWrites);
      const file = this.#sealed[0] ?? this.#journal;
      if (file === null) {
        if (this.#slowWrites.size === 0 && this.#held.length === 0) this.#mode = 'direct';
        return;
      }
      const read = file.read(chunk);
      for (const line of read.bad) this.#logger?.warn({ line: line.slice(0, 200), file: file.path }, 'unreadable audit journal line skipped');
      try {
        if (read.records.length > 0) await this.#writeDb(read.records);
      } catch (err) {
        this.#dbFailed(err, 'audit journal cannot be replayed into the database yet');
        await this.#sleep(this.#nextDelay());
        continue;
      }
      file.commit(read);
      if (read.records.length > 0) this.#dbSucceeded();
      if (file !== this.#journal) {
        // A rotated file: nothing is appended to it any more.
        if (file.drained) {
          this.#sealed.shift();
          this.#dropJournal(file);
        }
        continue;
      }
      if (file.drained && this.#slowWrites.size === 0 && this.#held.length === 0) {
        // Caught up (nothing can be appended between the check and the switch: one thread).
        this.#mode = 'direct';
        this.#journal = null;
        this.#dropJournal(file);
        // With ackFrom 'journal' this is the normal cycle (the next batch opens a new file), not news.
        if (!this.#journalFirst) this.#logger?.info({ file: file.path }, 'audit journal replayed; writing to the database again');
        return;
      }
      if (!file.drained && file.bytes >= this.#rotateBytes) {
        // Rows keep coming while earlier ones are written: this file would never be
        // empty. Appends go to a new file; this one is finished, then deleted.
        this.#sealed.push(file);
        this.#journal = null;
        continue;
      }
      // Caught up but something still holds the switch (held rows): do not spin.
      if (read.lines === 0) await this.#sleep(this.#retryMinMs);
    }
  }

  /** Replays the claimed journal files of crashed processes, oldest first, retrying until done or closed. */
  async #replayOrphans(): Promise<void> {
    // One batch per transaction: a long one would hold the write lock the main
    // thread's own SQLite writes wait for.
    const chunk = this.#batchRows;
    while (!this.#closed && this.#orphans.length > 0) {
      const path = this.#orphans[0]!;
      let file: JournalFile;
      try {
        file = JournalFile.open(path, this.#dir);
      } catch (err) {
        this.#logger?.error({ err, file: path }, 'cannot open an audit journal file to replay');
        this.#orphans.shift();
        continue;
      }
      let rows = 0;
      while (!this.#closed) {
        const read = file.read(chunk);
        if (read.lines === 0) break;
        for (const line of read.bad) this.#logger?.warn({ line: line.slice(0, 200), file: path }, 'unreadable audit journal line skipped');
        try {
          if (read.records.length > 0) await this.#writeDb(read.records);
        } catch (err) {
          this.#dbFailed(err, 'audit journal of a previous run cannot be replayed yet');
          await this.#sleep(this.#nextDelay());
          continue;
        }
        file.commit(read);
        rows += read.records.length;
      }
      if (this.#closed) {
        file.close();
        return;
      }
      file.remove();
      this.#orphans.shift();
      LIVE_JOURNALS.delete(path);
      this.#logger?.info({ file: path, rows }, 'audit journal of a previous run replayed');
    }
  }

  #probeJournal(): void {
    const probe = join(this.#dir, `.probe-${this.#key}.${process.pid}`);
    try {
      mkdirSync(this.#dir, { recursive: true });
      const fd = openSync(probe, 'w');
      try {
        writeSync(fd, 'x');
      } finally {
        closeSync(fd);
        removeFile(probe);
      }
      this.#journalSucceeded();
    } catch (err) {
      this.#journalFailed(err);
    }
  }

  #journalFailed(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    if (this.#journalError === null) this.#logger?.error({ err, dir: this.#dir }, 'the audit journal cannot be written');
    this.#journalError = message;
    if (this.#probeTimer === null && !this.#closed) {
      this.#probeTimer = setInterval(() => {
        if (this.#journal === null) this.#probeJournal();
        else if (this.#held.length === 0) this.#journalSucceeded();
      }, this.#probeMs);
      this.#probeTimer.unref();
    }
  }

  #journalSucceeded(): void {
    if (this.#journalError === null) return;
    this.#journalError = null;
    if (this.#probeTimer !== null) clearInterval(this.#probeTimer);
    this.#probeTimer = null;
    this.#logger?.info({ dir: this.#dir }, 'the audit journal can be written again');
  }

  // ---- held batches ---------------------------------------------------------------

  #hold(batch: Batch): void {
    this.#held.push(batch);
    this.#heldRows += batch.rows.length;
    while (this.#heldRows + this.#queue.length > this.#maxQueue && this.#held.length > 0) {
      const lost = this.#held.shift()!;
      this.#heldRows -= lost.rows.length;
      this.#drop(lost);
    }
  }

  /** Tries the held batches again: the database first, then the journal. True when none is left. */
  async #retryHeld(): Promise<boolean> {
    while (this.#held.length > 0 && !this.#closed) {
      const batch = this.#held[0]!;
      let ok = false;
      try {
        await this.#writeDb(batch.rows);
        ok = true;
        this.#dbSucceeded();
      } catch (err) {
        this.#dbFailed(err, 'audit rows cannot be written to the database');
      }
      if (this.#held[0] !== batch) continue; // dropped meanwhile
      this.#held.shift();
      this.#heldRows -= batch.rows.length;
      if (ok) {
        this.#markDurable(batch);
        if (this.#held.length === 0) this.#journalSucceeded();
        continue;
      }
      this.#toJournal(batch); // holds it again if the journal still fails
      if (this.#held.includes(batch)) return false;
    }
    if (this.#mode === 'journal' && this.#journal === null && this.#sealed.length === 0 && this.#held.length === 0) this.#mode = 'direct';
    return this.#held.length === 0;
  }

  /** Rows that can be kept nowhere: counted, logged, their callbacks discarded. */
  #drop(batch: Batch): void {
    this.#dropped += batch.rows.length;
    const now = Date.now();
    if (now - this.#lastDropLog > 5000) {
      this.#lastDropLog = now;
      this.#logger?.error({ rows: batch.rows.length, dropped: this.#dropped }, 'audit rows lost: neither the database nor the journal can take them');
    }
    // A caller whose own rows are lost is never told they are durable.
    const kept: Array<{ seq: number; fn: () => void }> = [];
    for (let i = this.#waiterHead; i < this.#waiters.length; i++) {
      const w = this.#waiters[i]!;
      if (w.seq <= batch.start || w.seq > batch.end) kept.push(w);
    }
    this.#waiters = kept;
    this.#waiterHead = 0;
    this.#markDurable(batch);
  }

  /** The queue reached `maxQueue`: the database is not keeping up; the journal takes it all now. */
  #spill(): void {
    const batch = this.#take(Infinity);
    if (this.#mode === 'direct') this.#logger?.warn({ rows: batch.rows.length }, 'audit queue full; journaling');
    this.#enterJournalMode();
    this.#toJournal(batch);
  }

  // ---- durability bookkeeping -----------------------------------------------------

  #markDurable(batch: { start: number; end: number }): void {
    if (batch.end <= this.#durable) return;
    if (batch.start > this.#durable) {
      const ahead = this.#doneAhead;
      if (ahead.some((b) => b.start === batch.start)) return;
      let i = ahead.length;
      while (i > 0 && ahead[i - 1]!.start > batch.start) i--;
      ahead.splice(i, 0, { start: batch.start, end: batch.end });
      return;
    }
    this.#durable = batch.end;
    while (this.#doneAhead.length > 0 && this.#doneAhead[0]!.start <= this.#durable) {
      this.#durable = Math.max(this.#durable, this.#doneAhead.shift()!.end);
    }
    this.#release();
  }

  #release(): void {
    const w = this.#waiters;
    let i = this.#waiterHead;
    while (i < w.length && w[i]!.seq <= this.#durable) {
      const fn = w[i]!.fn;
      i++;
      try {
        fn();
      } catch (err) {
        this.#logger?.error({ err }, 'audit durability callback threw');
      }
    }
    if (i === w.length) {
      this.#waiters = [];
      this.#waiterHead = 0;
    } else if (i > 1024 && i * 2 > w.length) {
      this.#waiters = w.slice(i);
      this.#waiterHead = 0;
    } else {
      this.#waiterHead = i;
    }
  }

  // ---- health and retries ---------------------------------------------------------

  #dbFailed(err: unknown, msg: string): void {
    const now = Date.now();
    if (this.#dbFailingSince === 0) {
      this.#dbFailingSince = now;
      this.#lastDbLog = now;
      this.#logger?.error({ err, queued: this.#queue.length }, msg);
    } else if (now - this.#lastDbLog >= 30_000) {
      this.#lastDbLog = now;
      this.#logger?.warn({ err, downMs: now - this.#dbFailingSince }, msg);
    }
  }

  #dbSucceeded(): void {
    this.#retryMs = this.#retryMinMs;
    if (this.#dbFailingSince === 0) return;
    this.#logger?.info({ downMs: Date.now() - this.#dbFailingSince }, 'audit rows are being written to the database again');
    this.#dbFailingSince = 0;
  }

  #nextDelay(): number {
    const ms = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, this.#retryMaxMs);
    return ms;
  }

  /** Waits `ms` (cut short by `flush` and `close`). */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((done) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        done();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.#sleepers.add(wake);
    });
  }

  #wakeAll(): void {
    for (const wake of [...this.#sleepers]) wake();
  }

  // ---- shutdown -------------------------------------------------------------------

  /** Whether every row recorded so far is durable (database or journal). */
  #allDurable(): boolean {
    return this.#durable >= this.#taken + this.#queue.length;
  }

  /**
   * Writes out what is queued now and waits, up to `timeoutMs`, for it to be durable and
   * for the journals to be replayed into the database. True when every row recorded is
   * durable (rows left in a journal are replayed at the next start).
   */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    this.#flushing++;
    try {
      this.#wakeAll();
      while (!this.#allDurable() && Date.now() < deadline) {
        if (!this.#running && (this.#queue.length > 0 || this.#held.length > 0)) {
          this.#clearTimer();
          void this.#run();
        }
        await pause(5);
      }
      while ((this.#replaying !== null || this.#orphanTask !== null) && Date.now() < deadline && !this.#closed) {
        this.#wakeAll();
        await pause(10);
      }
    } finally {
      this.#flushing--;
    }
    return this.#allDurable();
  }

  /**
   * Stops the writer. Rows not yet durable (a write still hanging, a journal that failed
   * earlier) are appended to the journal synchronously as a last resort; a journal that
   * was not fully replayed stays on disk for the next start.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    if (this.#probeTimer !== null) clearInterval(this.#probeTimer);
    this.#probeTimer = null;
    this.#wakeAll();
    // Let a write in progress finish (bounded: a hung database must not hold the stop).
    const settle = Promise.all([this.#replaying, this.#orphanTask].filter((p) => p !== null));
    await Promise.race([settle, pause(1000)]);
    const deadline = Date.now() + 1000;
    while ((this.#running || this.#detached > 0) && Date.now() < deadline) await pause(5);
    // A journal not fully replayed stays on disk; once this process is gone it is an orphan.
    if (this.#journal !== null) {
      this.#journal.close();
      LIVE_JOURNALS.delete(this.#journal.path);
    }
    this.#journal = null;
    for (const f of this.#sealed) {
      f.close();
      LIVE_JOURNALS.delete(f.path);
    }
    this.#sealed = [];
    this.#lastResort();
    LIVE_JOURNALS.delete(this.#journalPath);
    for (const path of this.#orphans) LIVE_JOURNALS.delete(path);
    for (const hook of this.#closeHooks) {
      try {
        await hook();
      } catch (err) {
        this.#logger?.error({ err }, 'audit close hook failed');
      }
    }
  }

  /**
   * After close: whatever is not durable goes to the journal, synchronously (write +
   * fdatasync). Used by `close` and by `record` calls that come after it.
   */
  #lastResort(): void {
    const pending: Batch[] = [...this.#held];
    for (const b of this.#current) if (b.end > this.#durable) pending.push(b);
    if (this.#queue.length > 0) pending.push(this.#take(Infinity));
    const rows = pending.filter((b) => b.end > this.#durable);
    this.#held = [];
    this.#heldRows = 0;
    if (rows.length === 0) return;
    // A file of its own: the main journal file may still be closing (or being removed).
    const path = this.#journalPath.replace(/\.ndjson$/, '.stop.ndjson');
    try {
      mkdirSync(this.#dir, { recursive: true });
      const fd = openSync(path, 'a');
      try {
        let text = '';
        for (const b of rows) for (const r of b.rows) text += encodeJournalLine(r);
        const data = Buffer.from(text);
        let done = 0;
        while (done < data.length) done += writeSync(fd, data, done, data.length - done);
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
      for (const b of rows) this.#markDurable(b);
      this.#logger?.warn({ rows: rows.reduce((n, b) => n + b.rows.length, 0), file: path }, 'audit rows left in the journal at stop; replayed at the next start');
    } catch (err) {
      for (const b of rows) this.#drop(b);
      this.#logger?.error({ err }, 'audit rows lost at stop: the journal cannot be written');
    }
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
