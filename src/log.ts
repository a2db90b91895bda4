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
