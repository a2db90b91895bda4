import { appendFileSync, closeSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { readNdjson } from './ndjson-read.js';
import { makePrivateDir, PRIVATE_FILE_MODE } from '../private-files.js';

/** How a journal turns one record into a line and back. */
export interface JournalCodec<T> {
  /** One line, newline included. */
  encode(item: T): string;
  /** One line without its newline; throws on anything malformed. */
  decode(line: string): T;
}

/** The result of {@link JournalFile.read}: records to write, then {@link JournalFile.commit} once written. */
export interface JournalRead<T> {
  items: T[];
  /** Lines that did not decode (a torn last line after a crash, a hand edit), raw. */
  bad: string[];
  /** Lines consumed, good or bad. */
  lines: number;
  /** Byte offset just past the last line consumed. */
  end: number;
}

const READ_CHUNK_BYTES = 1 << 20;
/** Lines given to {@link JournalFile.buffer} are written out at this count (and before every read). */
const BUFFER_LINES = 256;

/**
 * One append-only ndjson journal file, open for appending and for reading back from a
 * committed offset. Synchronous on purpose: appends interleave with the hot path on one
 * thread, and a sync write keeps the order exact. A record counts as kept once `write(2)`
 * returned (it survives the process); {@link sync} adds the disk.
 */
export class JournalFile<T> {
  private fd: number | null;
  private size: number;
  private offset = 0;
  /** Lines in the file, when counted (see `open`). */
  private lines: number | null;
  private committed = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private pendingLines = 0;
  private syncing = 0;
  private closeWhenSynced = false;

  private constructor(
    readonly path: string,
    private readonly codec: JournalCodec<T>,
    fd: number,
    size: number,
    count: boolean
  ) {
    this.fd = fd;
    this.size = size;
    this.lines = !count ? null : size === 0 ? 0 : countLines(fd, size);
  }

  /**
   * Opens (creating its folder and the file if need be) a file to append to and read back.
   * `count`: keep {@link remaining} (reads an existing file through once). Default false.
   */
  static open<T>(path: string, codec: JournalCodec<T>, count = false): JournalFile<T> {
    makePrivateDir(dirname(path));
    const fd = openSync(path, 'a+', PRIVATE_FILE_MODE);
    return new JournalFile(path, codec, fd, fstatSync(fd).size, count);
  }

  /** Bytes in the file, buffered ones included. */
  get bytes(): number {
    return this.size + this.pendingBytes;
  }

  /** Lines not yet committed (read-but-unwritten ones included); needs `count` at open. */
  get remaining(): number {
    if (this.lines === null) throw new Error(`journal ${this.path} was opened without counting its lines`);
    return this.lines + this.pendingLines - this.committed;
  }

  /** Whether every byte written has been read and committed. */
  get drained(): boolean {
    return this.pendingBytes === 0 && this.offset >= this.size;
  }

  /** Encodes one record (see {@link JournalCodec.encode}). */
  encode(item: T): string {
    return this.codec.encode(item);
  }

  /**
   * Appends whole lines now. On a failure (a full disk) the file is cut back to where it
   * was, so a torn line never sits in front of the next append, and the error is thrown.
   */
  append(text: string, lines = countNewlines(text)): void {
    if (this.fd === null) throw new Error(`journal ${this.path} is closed`);
    this.flush();
    this.write(text, lines);
  }

  /** Buffers one line; buffered lines are written every few hundred and by {@link flush}. */
  buffer(line: string): void {
    this.pending.push(line);
    this.pendingBytes += Buffer.byteLength(line);
    this.pendingLines++;
    if (this.pending.length >= BUFFER_LINES) this.flush();
  }

  /** Writes the buffered lines (to the OS: a process crash loses nothing written). */
  flush(): void {
    if (this.pending.length === 0 || this.fd === null) return;
    // Cleared only once written: a failed write (truncated back) keeps the lines for the next try.
    this.write(this.pending.join(''), this.pendingLines);
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingLines = 0;
  }

  /** fdatasync: resolves once every byte appended before the call is on the disk. */
  sync(): Promise<void> {
    const fd = this.fd;
    if (fd === null) return Promise.resolve();
    this.syncing++;
    return new Promise<void>((resolve, reject) => {
      fdatasync(fd, (err) => {
        this.syncing--;
        if (this.syncing === 0 && this.closeWhenSynced) this.finish();
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** fdatasync, blocking: for the last write of a stopping process. */
  syncNow(): void {
    if (this.fd !== null) fdatasyncSync(this.fd);
  }

  /** Reads up to `max` lines from the committed offset, without moving it. */
  read(max: number): JournalRead<T> {
    this.flush();
    if (this.fd === null) return { items: [], bad: [], lines: 0, end: this.offset };
    return readNdjson(this.fd, this.offset, this.size, max, (line) => this.codec.decode(line));
  }

  /**
   * The next read that holds records: reads with only bad lines are handed to `onBad` and
   * committed. Null once everything written is read.
   */
  next(max: number, onBad: (line: string) => void): JournalRead<T> | null {
    for (;;) {
      const read = this.read(max);
      if (read.lines === 0) return null;
      for (const line of read.bad) onBad(line);
      if (read.items.length > 0) return read;
      this.commit(read);
    }
  }

  /** Marks a read as written: the next read starts after it. */
  commit(read: JournalRead<T>): void {
    if (read.end <= this.offset) return;
    this.offset = read.end;
    this.committed += read.lines;
  }

  /** Closes the descriptor (once pending syncs are done); the file stays on disk. */
  close(): void {
    this.flush();
    this.closeWhenSynced = true;
    if (this.syncing === 0) this.finish();
  }

  /**
   * Deletes the file (everything in it is written) and closes it. The name goes at once —
   * a file opened at the same path right after is a new one — while the descriptor waits
   * for a pending fdatasync.
   */
  remove(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingLines = 0;
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone.
    }
    this.close();
  }

  private write(text: string, lines: number): void {
    const fd = this.fd!;
    const data = Buffer.from(text);
    let done = 0;
    try {
      while (done < data.length) done += writeSync(fd, data, done, data.length - done);
    } catch (err) {
      if (done > 0) {
        try {
          ftruncateSync(fd, this.size);
        } catch {
          // The read side skips a torn line anyway.
        }
      }
      throw err;
    }
    this.size += data.length;
    if (this.lines !== null) this.lines += lines;
  }

  private finish(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) closeSync(fd);
  }
}

/** Appends one line to a file of records set aside (never replayed), creating its folder. */
export function setAside(path: string, line: string): void {
  makePrivateDir(dirname(path));
  appendFileSync(path, line.endsWith('\n') ? line : line + '\n', { mode: PRIVATE_FILE_MODE });
}

/** Removes a file, ignoring one that is already gone. */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function countLines(fd: number, size: number): number {
  const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let lines = 0;
  let last = 0x0a;
  for (let pos = 0; pos < size; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
    if (n === 0) break;
    for (let i = buf.indexOf(0x0a, 0); i !== -1 && i < n; i = buf.indexOf(0x0a, i + 1)) lines++;
    last = buf[n - 1]!;
    pos += n;
  }
  return last === 0x0a ? lines : lines + 1;
}
