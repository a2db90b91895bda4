/** The logger shape the durable queue uses (pino fits). */
export interface DurableLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Options of {@link RetryPolicy}. Times in milliseconds. */
export interface RetryPolicyOptions {
  /** First delay after a failure; it doubles on each failure. */
  minMs: number;
  /** Cap of the delay. */
  maxMs: number;
  logger?: DurableLogger | undefined;
  /** Logged (at info) when a write succeeds after failures. */
  recoveredMsg: string;
}

/** While someone hurries (`flush`), a retry waits at most this long. */
const HURRIED_MS = 10;
/** A failure that goes on is logged again at most this often. */
const RELOG_MS = 30_000;

/**
 * Backoff and health of a writer that retries: the delay doubles from `minMs` to `maxMs`
 * and starts over on success; failures are logged at error once, then at warn every 30 s
 * while they go on. `sleep` waits are cut short by `wake` (close) and shortened while
 * someone `hurry`s (flush), so neither waits out a long backoff.
 */
export class RetryPolicy {
  private delayMs: number;
  private failingSince = 0;
  private lastLog = 0;
  private hurried = 0;
  private readonly sleepers = new Set<() => void>();

  constructor(private readonly o: RetryPolicyOptions) {
    this.delayMs = o.minMs;
  }

  /** False from a failure until the next success. */
  get healthy(): boolean {
    return this.failingSince === 0;
  }

  /** Notes a failure; logs it (throttled). `fields` go into the log line. */
  failed(err: unknown, msg: string, fields: object = {}): void {
    const now = Date.now();
    if (this.failingSince === 0) {
      this.failingSince = now;
      this.lastLog = now;
      this.o.logger?.error({ err, ...fields }, msg);
    } else if (now - this.lastLog >= RELOG_MS) {
      this.lastLog = now;
      this.o.logger?.warn({ err, ...fields, downMs: now - this.failingSince }, msg);
    }
  }

  /** Notes a success: the delay starts over; a recovery is logged. */
  succeeded(fields: object = {}): void {
    this.delayMs = this.o.minMs;
    if (this.failingSince === 0) return;
    this.o.logger?.info({ downMs: Date.now() - this.failingSince, ...fields }, this.o.recoveredMsg);
    this.failingSince = 0;
  }

  /** The first delay. */
  get minMs(): number {
    return this.o.minMs;
  }

  /** The delay the next failure waits (without moving it on). */
  get delay(): number {
    return this.delayMs;
  }

  /** The delay to wait now; the next one doubles, up to the cap. */
  nextDelay(): number {
    const ms = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.o.maxMs);
    return ms;
  }

  /** Waits the next delay (see {@link sleep}). */
  backoff(): Promise<void> {
    return this.sleep(this.nextDelay());
  }

  /** Waits `ms`, less while hurried; `wake` ends every wait at once. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((done) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        done();
      };
      const timer = setTimeout(wake, this.hurried > 0 ? Math.min(ms, HURRIED_MS) : ms);
      timer.unref();
      this.sleepers.add(wake);
    });
  }

  /** Ends every wait now. */
  wake(): void {
    for (const wake of [...this.sleepers]) wake();
  }

  /** Until the returned function is called, waits are short (and the current ones end). */
  hurry(): () => void {
    this.hurried++;
    this.wake();
    let done = false;
    return () => {
      if (!done) this.hurried--;
      done = true;
    };
  }
}
