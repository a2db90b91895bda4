import { closeSync, openSync, writeSync } from 'node:fs';
import { makePrivateDir, PRIVATE_FILE_MODE } from '../store/private-files.js';
import { join } from 'node:path';
import { removeFile } from '../store/durable/journal-file.js';
import type { StoreLogger } from '../store/store.js';

/** Options of {@link JournalHealth}. */
export interface JournalHealthOptions {
  dir: string;
  key: string;
  /** How often a failed journal is probed again. */
  probeMs: number;
  logger: StoreLogger | undefined;
  /** Called every `probeMs` while the journal is failing: probe it, or note it works again. */
  recheck: () => void;
}

/**
 * Whether the audit journal can be written (for /readyz): a failure is logged once and
 * then rechecked every `probeMs` until it works again.
 */
export class JournalHealth {
  private error: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: JournalHealthOptions) {}

  get ok(): boolean {
    return this.error === null;
  }

  /** Writes and removes a small file in the journal folder. */
  probe(): void {
    const probe = join(this.o.dir, `.probe-${this.o.key}.${process.pid}`);
    try {
      makePrivateDir(this.o.dir);
      const fd = openSync(probe, 'w', PRIVATE_FILE_MODE);
      try {
        writeSync(fd, 'x');
      } finally {
        closeSync(fd);
        removeFile(probe);
      }
      this.succeeded();
    } catch (err) {
      this.failed(err);
    }
  }

  failed(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    if (this.error === null) this.o.logger?.error({ err, dir: this.o.dir }, 'the audit journal cannot be written');
    this.error = message;
    if (this.timer === null && !this.stopped) {
      this.timer = setInterval(this.o.recheck, this.o.probeMs);
      this.timer.unref();
    }
  }

  succeeded(): void {
    if (this.error === null) return;
    this.error = null;
    this.clearTimer();
    this.o.logger?.info({ dir: this.o.dir }, 'the audit journal can be written again');
  }

  /** No more probes (close). */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
