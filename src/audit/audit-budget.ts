import type { StoreLogger } from '../store/store.js';

/** Options of {@link AuditBudget}. */
export interface AuditBudgetOptions {
  /** Bytes the audit trail takes now (database plus journal). May reject (the last answer then stands). */
  measure: () => Promise<number>;
  /** Past this many bytes, new broadcasts are refused (`--audit-max-bytes`); 0 = no cap. */
  maxBytes: number;
  /** Pause between two measurements (`--audit-size-check-ms`). */
  intervalMs: number;
  /** Told when the budget turns full (`refused` 0) and when it has room again (`refused`: broadcasts refused meanwhile). */
  onChange?: (full: boolean, bytes: number, refused: number) => void;
  logger?: StoreLogger;
}

/**
 * The audit trail's space budget, as auditd's `disk_full_action`: the storage is measured
 * every `intervalMs` (never per message) and, while it is past `maxBytes` (strictly more:
 * exactly `maxBytes` is still within it), `refuseBroadcast()` says yes, so nothing is
 * sent that could not be recorded. Retention frees space; the next measurement lifts
 * the refusal. On the hot path the check is one boolean read.
 */
export class AuditBudget {
  /** Whether the storage was past the cap at the last measurement. */
  full = false;
  /** The last measurement (bytes). */
  bytes = 0;
  private refused = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly o: AuditBudgetOptions) {}

  /** Measures now, then every `intervalMs`. With no cap, does nothing. */
  async start(): Promise<void> {
    if (this.o.maxBytes <= 0) return;
    await this.check();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.check().finally(() => this.schedule());
    }, this.o.intervalMs);
    this.timer.unref();
  }

  /** True (and counted) when a broadcast must be refused: the audit storage is full. */
  refuseBroadcast(): boolean {
    if (!this.full) return false;
    this.refused++;
    return true;
  }

  /** One measurement; never rejects. */
  check(): Promise<void> {
    this.running ??= this.measure().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async measure(): Promise<void> {
    let bytes: number;
    try {
      bytes = await this.o.measure();
    } catch (err) {
      this.o.logger?.warn({ err }, 'audit storage could not be measured; keeping the last measurement');
      return;
    }
    this.bytes = bytes;
    const full = this.o.maxBytes > 0 && bytes > this.o.maxBytes;
    if (full === this.full) return;
    this.full = full;
    const refused = this.refused;
    this.refused = 0;
    if (full) {
      this.o.logger?.error({ bytes, maxBytes: this.o.maxBytes }, 'audit full: the audit storage is past --audit-max-bytes; broadcasts are refused until retention frees space');
    } else {
      this.o.logger?.info({ bytes, maxBytes: this.o.maxBytes, refused }, 'audit storage back under --audit-max-bytes; broadcasts accepted again');
    }
    this.o.onChange?.(full, bytes, refused);
  }

  /** Stops measuring (waits for a measurement in progress). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
