import { JournalFile } from '../store/durable/journal-file.js';
import { releaseFile, holdFile } from '../store/durable/journal-claim.js';
import { replayFile } from '../store/durable/replay.js';
import { BackgroundSync } from '../store/durable/background-sync.js';
import type { RetryPolicy } from '../store/durable/retry-policy.js';
import type { AuditRecord, StoreLogger } from '../store/store.js';
import { auditJournalCodec, claimOrphanJournals, ownJournalPath } from './audit-journal.js';

/** What the journal log needs of its writer. */
export interface JournalLogHost {
  isClosed(): boolean;
  /** True while batches go to the journal (the replay runs until the writer leaves this mode). */
  isJournaling(): boolean;
  /** Nothing holds the switch back to the database: no slow write pending, no batch held. */
  settled(): boolean;
  /** Resolves once the database writes that went over `slowWriteMs` settled; null when none. */
  slowWrites(): Promise<unknown> | null;
  /** One idempotent database transaction (refused rows set aside). */
  writeDb(rows: readonly AuditRecord[]): Promise<void>;
  /** The replay caught up: batches go to the database again. */
  caughtUp(): void;
  journalFailed(err: unknown): void;
  /** A replay task ended (flush and close wait on it). */
  changed(): void;
}

/** Options of {@link AuditJournalLog}. */
export interface AuditJournalLogOptions {
  dir: string;
  key: string;
  serverId: string;
  batchRows: number;
  rotateBytes: number;
  /** With `ackFrom: 'journal'` the journal is the normal path: catching up is not news. */
  journalFirst: boolean;
  retry: RetryPolicy;
  logger: StoreLogger | undefined;
}

/**
 * This process's audit journal files and their replay into the database: appends go to
 * the current file (rotated at `rotateBytes`, so under steady traffic a file still ends
 * and is deleted), each followed by a background fdatasync; a replayer copies the files
 * into the database behind the appends; orphans of crashed processes are replayed too.
 */
export class AuditJournalLog {
  private journal: JournalFile<AuditRecord> | null = null;
  /** Rotated files: no longer appended to, replayed (oldest first) and then deleted. */
  private sealed: JournalFile<AuditRecord>[] = [];
  private seq = 0;
  /** One fdatasync at a time, covering every append before it; bounds what a power loss can take. */
  private readonly syncer = new BackgroundSync(() => this.journal, (err) => this.host.journalFailed(err));
  private replaying: Promise<void> | null = null;
  private orphans: string[] = [];
  private orphanTask: Promise<void> | null = null;
  /** The first file's path: held from construction to close. */
  readonly path: string;

  constructor(
    private readonly o: AuditJournalLogOptions,
    private readonly host: JournalLogHost
  ) {
    this.path = ownJournalPath(o.dir, o.key, o.serverId);
    holdFile(this.path);
  }

  /** Bytes in this process's journal files. */
  get bytes(): number {
    return this.sealed.reduce((n, f) => n + f.bytes, this.journal?.bytes ?? 0);
  }

  /** Claimed orphan files not yet replayed. */
  get orphanCount(): number {
    return this.orphans.length;
  }

  /** Whether a file is open for appends or waiting for its replay. */
  get hasFiles(): boolean {
    return this.journal !== null || this.sealed.length > 0;
  }

  /** Whether a file is open for appends. */
  get open(): boolean {
    return this.journal !== null;
  }

  /** Whether a replay (own files or orphans) is running. */
  get busy(): boolean {
    return this.replaying !== null || this.orphanTask !== null;
  }

  /** Appends rows (`write(2)`: they survive the process from here on); throws when the journal fails. */
  append(rows: readonly AuditRecord[]): void {
    this.journal ??= this.openNext();
    let text = '';
    for (const r of rows) text += this.journal.encode(r);
    this.journal.append(text, rows.length);
    this.syncer.appended();
    this.startReplay();
  }

  /** Claims orphan journal files of this database and replays them in the background. */
  claimOrphans(): number {
    let claimed: string[] = [];
    try {
      claimed = claimOrphanJournals(this.o.dir, this.o.key);
    } catch (err) {
      this.o.logger?.error({ err, dir: this.o.dir }, 'cannot read the audit journal folder');
    }
    if (claimed.length > 0) {
      this.o.logger?.warn({ files: claimed }, 'replaying audit journal files left by a previous run');
      this.orphans.push(...claimed);
      this.orphanTask ??= this.replayOrphans().finally(() => {
        this.orphanTask = null;
        this.host.changed();
      });
    }
    return claimed.length;
  }

  /** Closes the files; what was not replayed stays on disk, an orphan once this process is gone. */
  close(): void {
    if (this.journal !== null) {
      this.journal.close();
      releaseFile(this.journal.path);
    }
    this.journal = null;
    for (const f of this.sealed) {
      f.close();
      releaseFile(f.path);
    }
    this.sealed = [];
    releaseFile(this.path);
    for (const path of this.orphans) releaseFile(path);
  }

  /** A new journal file to append to, under a name no file on disk has. */
  private openNext(): JournalFile<AuditRecord> {
    const file = JournalFile.open(ownJournalPath(this.o.dir, this.o.key, this.o.serverId, this.seq), auditJournalCodec);
    this.seq++;
    holdFile(file.path);
    return file;
  }

  /** Deletes a journal file that is all in the database. */
  private drop(file: JournalFile<AuditRecord>): void {
    file.remove();
    if (file.path !== this.path) releaseFile(file.path);
  }

  private startReplay(): void {
    if (this.replaying !== null || this.host.isClosed()) return;
    this.replaying = this.replayOwn().finally(() => {
      this.replaying = null;
      this.host.changed();
    });
  }

  private readonly badLine = (file: string) => (line: string) =>
    this.o.logger?.warn({ line: line.slice(0, 200), file }, 'unreadable audit journal line skipped');

  /** Copies this process's journal into the database, behind the appends; back to the database once caught up. */
  private async replayOwn(): Promise<void> {
    const retry = this.o.retry;
    await retry.sleep(retry.delay);
    // One batch per transaction: a long one would hold the write lock the main
    // thread's own SQLite writes wait for.
    const chunk = this.o.batchRows;
    while (!this.host.isClosed() && this.host.isJournaling()) {
      const slow = this.host.slowWrites();
      if (slow !== null) await slow;
      const file = this.sealed[0] ?? this.journal;
      if (file === null) {
        if (this.host.settled()) this.host.caughtUp();
        return;
      }
      const read = file.read(chunk);
      read.bad.forEach(this.badLine(file.path));
      try {
        if (read.items.length > 0) await this.host.writeDb(read.items);
      } catch (err) {
        retry.failed(err, 'audit journal cannot be replayed into the database yet');
        await retry.backoff();
        continue;
      }
      file.commit(read);
      if (read.items.length > 0) retry.succeeded();
      if (file !== this.journal) {
        // A rotated file: nothing is appended to it any more.
        if (file.drained) {
          this.sealed.shift();
          this.drop(file);
        }
        continue;
      }
      if (file.drained && this.host.settled()) {
        // Caught up (nothing can be appended between the check and the switch: one thread).
        this.host.caughtUp();
        this.journal = null;
        this.drop(file);
        if (!this.o.journalFirst) this.o.logger?.info({ file: file.path }, 'audit journal replayed; writing to the database again');
        return;
      }
      if (!file.drained && file.bytes >= this.o.rotateBytes) {
        // Rows keep coming while earlier ones are written: this file would never be
        // empty. Appends go to a new file; this one is finished, then deleted.
        this.sealed.push(file);
        this.journal = null;
        continue;
      }
      // Caught up but something still holds the switch (held rows): do not spin.
      if (read.lines === 0) await retry.sleep(retry.minMs);
    }
  }

  /** Replays the claimed journal files of crashed processes, oldest first, retrying until done or closed. */
  private async replayOrphans(): Promise<void> {
    while (!this.host.isClosed() && this.orphans.length > 0) {
      const path = this.orphans[0]!;
      let file: JournalFile<AuditRecord>;
      try {
        file = JournalFile.open(path, auditJournalCodec);
      } catch (err) {
        this.o.logger?.error({ err, file: path }, 'cannot open an audit journal file to replay');
        this.orphans.shift();
        continue;
      }
      const done = await replayFile(file, {
        // One batch per transaction, as above.
        max: this.o.batchRows,
        write: (rows) => this.host.writeDb(rows),
        retry: this.o.retry,
        failMsg: 'audit journal of a previous run cannot be replayed yet',
        onBad: this.badLine(path),
        stopped: () => this.host.isClosed()
      });
      if (!done.complete) {
        file.close();
        return;
      }
      file.remove();
      this.orphans.shift();
      releaseFile(path);
      this.o.logger?.info({ file: path, rows: done.items }, 'audit journal of a previous run replayed');
    }
  }
}
