/**
 * The access log's writer: lines batched per turn of the event loop, to stdout or to a
 * file that logrotate can rotate (`reopen()` on SIGUSR1, as nginx does).
 */
import { makePrivateDir } from '../store/private-files.js';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { ZenError } from '../errors.js';
import { COMBINED, compileFormat, type AccessLogEntry, type AccessLogFormatter } from './access-log.js';
import { AccessLogFile, countLines } from './access-log-file.js';

/** Options of {@link AccessLog}. */
export interface AccessLogOptions {
  /**
   * `'-'` (or `''`) for stdout, `'off'` for no log, or a file path (appended to, created
   * with its directory if missing). Default: `'-'`.
   */
  destination?: string;
  /** An nginx `log_format` string; see {@link compileFormat}. Default: {@link COMBINED}. */
  format?: string;
  /**
   * Most bytes of lines waiting to be written (our batch plus the writer's); a line
   * that would go over is dropped and counted in `droppedLines`, so a stalled disk
   * cannot grow memory without end. Default: 8 MiB.
   */
  maxBufferedBytes?: number;
  /** Called with a write or open error of the destination. Default: one line on stderr. */
  onError?: (err: Error) => void;
}

const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
// Hand a batch over once it is this big, without waiting for the next tick.
const BATCH_BYTES = 64 * 1024;

/**
 * Writes access log lines. `log` appends the line to a batch that is handed over on the
 * next turn of the event loop (or at 64 KiB), so the hot path is one string
 * concatenation. A file is written by sonic-boom, appending (`O_APPEND`).
 *
 * Ordering and rotation: lines are written in `log` order. After `reopen()` every line
 * logged before it is in the old file and every line after it in the new one, none lost,
 * whether logrotate renamed the file or not (see {@link AccessLogFile}).
 * `close()` writes everything pending, closes the file and resolves. After `close()`,
 * `log` does nothing. With `'off'` every method is a no-op.
 */
export class AccessLog {
  /** The destination as given: `'-'`, `'off'` or the file path. */
  readonly destination: string;
  private readonly format: AccessLogFormatter;
  private readonly maxBufferedBytes: number;
  private readonly file: AccessLogFile | null = null;
  /** stdout when the destination is `'-'`: not ours to end. */
  private readonly stdout: Writable | null = null;
  private pending = '';
  private scheduled = false;
  private closed = false;
  private dropped = 0;

  /**
   * @throws ZenError `ERR_CONFIG_INVALID` for an unknown format variable, a bad
   *   `maxBufferedBytes`, or a log directory that cannot be created.
   */
  constructor(options: AccessLogOptions = {}) {
    this.destination = options.destination ?? '-';
    this.format = compileFormat(options.format ?? COMBINED);
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    if (!Number.isInteger(this.maxBufferedBytes) || this.maxBufferedBytes < 1) {
      throw new ZenError('ERR_CONFIG_INVALID', `access log maxBufferedBytes must be a positive integer, got ${this.maxBufferedBytes}`);
    }
    const onError = options.onError ?? ((err) => process.stderr.write(`zenconn: access log ${this.destination}: ${err.message}\n`));
    if (this.destination === '-' || this.destination === '') {
      this.stdout = process.stdout;
    } else if (this.destination !== 'off') {
      // A directory that cannot be made is a configuration error, before any port is bound.
      try {
        makePrivateDir(dirname(this.destination));
      } catch (err) {
        throw new ZenError('ERR_CONFIG_INVALID', `access log "${this.destination}": ${(err as Error).message}`);
      }
      this.file = new AccessLogFile(this.destination, onError);
    }
  }

  /** Resolves once the file is open (at once for stdout and `'off'`); rejects with the open error. */
  ready(): Promise<void> {
    return this.file?.ready ?? Promise.resolve();
  }

  /** Lines dropped because more than `maxBufferedBytes` were waiting, or the file could not be written. */
  get droppedLines(): number {
    return this.dropped + (this.file?.lostLines ?? 0);
  }

  /** Formats `entry` and queues the line. Never throws, never blocks. */
  log(entry: AccessLogEntry): void {
    if (this.closed || (this.file === null && this.stdout === null)) return;
    const line = this.format(entry) + '\n';
    const waiting = this.file !== null ? this.file.bufferedBytes : this.stdout!.writableLength;
    // Lines are ASCII after escaping (bar literal text in the format), so length ≈ bytes.
    if (this.stdout?.destroyed === true || this.pending.length + line.length + waiting > this.maxBufferedBytes) {
      this.dropped++;
      return;
    }
    this.pending += line;
    if (this.pending.length >= BATCH_BYTES) {
      this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.onTick);
    }
  }

  /**
   * Reopens the file at the same path (for SIGUSR1 after logrotate renamed it): lines
   * logged before go to the old file, lines after to the new one. Also retries a file
   * that failed to open or write. A no-op for stdout, `'off'` and after `close()`.
   */
  reopen(): void {
    if (this.file === null || this.closed) return;
    this.flush();
    this.file.reopen();
  }

  /** Writes every pending line, closes the file, and resolves when all is on disk (stdout: handed to it). */
  async close(): Promise<void> {
    if (!this.closed) {
      this.flush();
      this.closed = true;
    }
    const out = this.stdout;
    if (this.file !== null) {
      await this.file.close();
    } else if (out !== null && !out.destroyed && out.writableLength > 0) {
      // stdout is not ours to end: wait for what we handed it.
      await new Promise<void>((resolve) => out.write('', () => resolve()));
    }
  }

  private readonly onTick = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private flush(): void {
    if (this.pending === '') return;
    const data = this.pending;
    this.pending = '';
    if (this.file !== null) {
      if (!this.file.write(data)) this.dropped += countLines(data);
    } else if (this.stdout !== null) {
      if (this.stdout.destroyed) this.dropped += countLines(data);
      else this.stdout.write(data);
    }
  }
}
