import type { Store, StoreLogger } from './store.js';

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
