/**
 * The access log's file: pino's own writer, `sonic-boom`, appending to a path that
 * logrotate may rename. `reopen()` (SIGUSR1) keeps every line before it in the old file
 * and every line after it in the new one.
 */
import sonicBoom, { type SonicBoom } from 'sonic-boom';
import { PRIVATE_FILE_MODE } from '../store/private-files.js';

// sonic-boom is CommonJS: its class is a property of the module object.
const { SonicBoom: Boom } = sonicBoom;

/**
 * One access-log file. `write` hands a batch of lines to sonic-boom, which appends them
 * in order with one `write(2)` at a time.
 *
 * Reopen: sonic-boom's own `reopen()` sends what it still holds to the new file, so this
 * class first lets the old file take everything handed to it (sonic-boom's `drain`),
 * holding the lines that arrive meanwhile, then reopens and hands those over.
 * Reopens that come while one is waiting are one reopen.
 *
 * After an open or write error, the file is broken: `write` refuses lines (the caller
 * counts them dropped) until `reopen()` opens the path anew.
 */
export class AccessLogFile {
  /** Resolves once the first open succeeded; rejects with its error. */
  readonly ready: Promise<void>;
  private boom: SonicBoom;
  /** Whether `boom` has opened its file (a sonic-boom that never opened cannot be ended). */
  private opened = false;
  /** Bytes handed to `boom` and not yet written. */
  private queued = 0;
  /** Lines logged while a reopen waits for the old file to take what it was given. */
  private held = '';
  private reopening = false;
  private broken = false;
  private closing: Promise<void> | null = null;
  /** Called when a reopen has been handed to sonic-boom (or given up). */
  private reopened: Array<() => void> = [];
  /** Lines lost in the file's buffers to an error. */
  private lost = 0;

  constructor(
    private readonly path: string,
    private readonly onError: (err: Error) => void
  ) {
    this.boom = this.open();
    const boom = this.boom;
    this.ready = new Promise<void>((resolve, reject) => {
      boom.once('ready', resolve);
      boom.once('error', reject);
    });
    // ready() is optional: an open error is also reported through onError.
    this.ready.catch(() => undefined);
  }

  /** Bytes waiting: handed to sonic-boom and not yet written, or held during a reopen. */
  get bufferedBytes(): number {
    return this.queued + this.held.length;
  }

  /** Lines lost because the file failed while they waited. */
  get lostLines(): number {
    return this.lost;
  }

  /** Queues `data` (whole lines). False when the file is broken or closing: the lines are not taken. */
  write(data: string): boolean {
    if (this.broken || this.closing !== null) return false;
    if (this.reopening) this.held += data;
    else this.hand(data);
    return true;
  }

  /** Reopens the path (after logrotate's rename); retries a broken file. */
  reopen(): void {
    if (this.closing !== null || this.reopening) return;
    if (this.broken) {
      if (this.opened) this.boom.destroy();
      this.broken = false;
      this.opened = false;
      this.queued = 0;
      this.boom = this.open();
      return;
    }
    this.reopening = true;
    this.afterDrain(() => {
      if (!this.reopening) return; // an error gave the reopen up
      this.boom.reopen();
      this.reopening = false;
      const held = this.held;
      this.held = '';
      if (held !== '') this.hand(held);
      for (const done of this.reopened.splice(0)) done();
    });
  }

  /** Writes everything taken, closes the file, and resolves when it is closed. */
  close(): Promise<void> {
    this.closing ??= this.finish();
    return this.closing;
  }

  private async finish(): Promise<void> {
    if (this.reopening) await new Promise<void>((resolve) => this.reopened.push(resolve));
    const boom = this.boom;
    if (this.broken) {
      if (this.opened) boom.destroy();
      return;
    }
    // Still opening: sonic-boom ends once it is open, and an open error settles this too.
    await new Promise<void>((resolve) => {
      boom.once('close', resolve);
      boom.once('error', () => resolve());
      boom.end();
    });
  }

  private hand(data: string): void {
    this.queued += Buffer.byteLength(data);
    this.boom.write(data);
  }

  /** Runs `fn` once sonic-boom has written all it was given. */
  private afterDrain(fn: () => void): void {
    if (this.queued === 0) {
      fn();
      return;
    }
    const boom = this.boom;
    const onDrain = (): void => {
      boom.off('error', onError);
      // A drain queued by an earlier reopen can come before the bytes given since.
      if (boom === this.boom && this.queued > 0) this.afterDrain(fn);
      else fn();
    };
    const onError = (): void => {
      boom.off('drain', onDrain);
      fn();
    };
    boom.once('drain', onDrain);
    boom.once('error', onError);
  }

  private open(): SonicBoom {
    // The log holds client addresses and users: owner only (see store/private-files.ts).
    const boom = new Boom({ dest: this.path, append: true, mkdir: true, mode: PRIVATE_FILE_MODE });
    boom.on('ready', () => {
      if (boom === this.boom) this.opened = true;
    });
    boom.on('write', (n: number) => {
      if (boom === this.boom) this.queued = Math.max(0, this.queued - n);
    });
    boom.on('error', (err: Error) => {
      if (boom !== this.boom) return; // a file already replaced by a reopen
      this.onError(err);
      this.broken = true;
      this.lost += countLines(this.held);
      this.held = '';
      this.reopening = false;
      for (const done of this.reopened.splice(0)) done();
    });
    return boom;
  }
}

/** Lines in `s` (each ends with a newline). */
export function countLines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
