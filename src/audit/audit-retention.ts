import type { Store, StoreLogger } from '../store/store.js';

/** Options of {@link AuditRetention}. Every time is in milliseconds. */
export interface AuditRetentionOptions {
  store: Store;
  /** Deletes one batch. Default `store.deleteAuditBefore`. */
  deleteBefore?: (before: Date, limit: number) => Promise<number>;
  /** Rows older than this are deleted (`--audit-retention`). Required. */
  maxAgeMs: number;
  /** Pause between two passes. Default 60000. */
  intervalMs?: number;
  /** Delay of the first pass after `start()`. Default 1000. */
  firstRunMs?: number;
  /** Rows per DELETE (one short transaction each). Default 1000. */
  batchRows?: number;
  /** Pause between two DELETEs of a pass, so the writer and readers get the database in between. Default 10. */
  pauseMs?: number;
  /** Default: none. */
  logger?: StoreLogger;
}

/** `30d`, `12h`, `90m`, `45s`, `500ms` → milliseconds; null for anything else. */
export function parseDurationMs(text: string): number | null {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  const ms = Number(m[1]) * unit;
  return Number.isSafeInteger(ms) ? ms : null;
}

/**
 * Deletes audit rows older than the retention in the background: a pass every
 * `intervalMs`, each pass in DELETEs of `batchRows` rows (oldest first, through the
 * `at` index) with a pause between them, so it never holds a long lock or a long
 * turn of the event loop. Several servers on one database may all run it: deleting is
 * idempotent.
 */
export class AuditRetention {
  private readonly o: Required<Omit<AuditRetentionOptions, 'logger' | 'deleteBefore'>> & { logger?: StoreLogger };
  private readonly deleteBefore: (before: Date, limit: number) => Promise<number>;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;

  constructor(options: AuditRetentionOptions) {
    if (!Number.isFinite(options.maxAgeMs) || options.maxAgeMs <= 0) throw new RangeError('AuditRetention: maxAgeMs must be positive');
    this.o = {
      intervalMs: 60_000,
      firstRunMs: 1000,
      batchRows: 1000,
      pauseMs: 10,
      ...options
    };
    const store = options.store;
    this.deleteBefore = options.deleteBefore ?? ((before, limit) => store.deleteAuditBefore(before, limit));
  }

  /** Schedules the passes. */
  start(): void {
    this.schedule(this.o.firstRunMs);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runOnce().finally(() => this.schedule(this.o.intervalMs));
    }, ms);
    this.timer.unref();
  }

  /** One pass: deletes every row older than the retention as of now. Resolves with the count; never rejects. */
  runOnce(now: Date = new Date()): Promise<number> {
    this.running ??= this.pass(now).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(now: Date): Promise<number> {
    const before = new Date(now.getTime() - this.o.maxAgeMs);
    let total = 0;
    try {
      while (!this.stopped) {
        const n = await this.deleteBefore(before, this.o.batchRows);
        total += n;
        if (n < this.o.batchRows) break;
        await new Promise((r) => setTimeout(r, this.o.pauseMs));
      }
    } catch (err) {
      this.o.logger?.warn({ err, deleted: total }, 'audit retention pass failed; retrying at the next one');
    }
    if (total > 0) this.o.logger?.info({ deleted: total, before: before.toISOString() }, 'audit rows past retention deleted');
    return total;
  }

  /** Stops scheduling and waits for a pass in progress (it stops after its current DELETE). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
