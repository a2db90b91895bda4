import pino, { type Logger } from 'pino';

/** The application logger: JSON lines on stderr (stdout carries the access log). */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } }, pino.destination({ fd: 2, sync: false }));
}

/**
 * The URL with its password, if any, replaced by `****`, for logs and error messages. The
 * password runs to the last `@` before the host, so one holding `/`, `?`, `#` or `@` is masked
 * whole too.
 */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):.*@(?=[^@]*$)/i, '$1:****@');
}

/**
 * Logs a recurring fault (a peer's unreadable record, …) at most once per `intervalMs`
 * (default 10 s), telling how many occurrences went unlogged since: a flood of bad input
 * cannot flood the log.
 */
export class LogThrottle {
  private last = -Infinity;
  private suppressed = 0;
  constructor(private readonly intervalMs = 10_000) {}

  /** Calls `log` with the count of unlogged occurrences when one is due; counts this one otherwise. */
  run(log: (suppressed: number) => void): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.last = now;
    const n = this.suppressed;
    this.suppressed = 0;
    log(n);
  }
}
