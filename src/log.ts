import pino, { type Logger } from 'pino';

/** The application logger: JSON lines on stderr (stdout carries the access log). */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } }, pino.destination({ fd: 2, sync: false }));
}
