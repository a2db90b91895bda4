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
  /** The longest gap between two commits of a synchronous `write` (see `GroupCommitScheduler`): a row waits at most this long. 0 = commit every turn of the event loop. Default 5. */
  batchMs?: number;
  /**
   * Whether `write` is asynchronous (PostgreSQL): then a commit starts as soon as the
   * writer is idle, and rows recorded while one is in flight go together in the next —
   * group commit without a timer, so a quiet server adds no delay and a busy one batches
   * by itself. False: the window of `batchMs` (see `GroupCommitScheduler`). Default false.
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
