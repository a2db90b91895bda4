import {
  closeSync,
  fstatSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  existsSync,
  statSync,
  unlinkSync,
  writeSync
} from 'node:fs';
import { join } from 'node:path';
import { readNdjson } from './ndjson-read.js';
import type { ProtocolName } from '../protocol/codec.js';
import type { SessionCloseRecord, SessionOpenRecord } from './store.js';

/**
 * The record writer's on-disk spool: append-only ndjson files, one JSON object per
 * line, in the order the records happened.
 *
 *   {"t":"open","id":"…","serverId":"…","remoteAddr":"…","userAgent":null,"userId":null,"protocol":"json","connectedAt":"2026-…Z"}
 *   {"t":"close","id":"…","disconnectedAt":"2026-…Z","closeCode":1000,"bytesIn":12,"bytesOut":34,"messagesIn":1,"messagesOut":2}
 *
 * A file is named `<label>.<pid>.ndjson` (label = the writer's server id) or, once
 * another process has taken it over, `<label>.<pid>.<tag>.ndjson`; the pid is the
 * owning process's. A file whose owner is no longer running is an orphan: the next
 * writer to start on that host renames it to its own pid (an atomic claim) and
 * replays it. The spool directory must therefore be local to the host.
 */

/** One session record, as the writer queues and spools it. */
export type SpoolEntry =
  | { kind: 'open'; record: SessionOpenRecord }
  | { kind: 'close'; record: SessionCloseRecord };

/** The result of {@link SpoolFile.read}: entries to write, then {@link SpoolFile.commit} once written. */
export interface SpoolRead {
  entries: SpoolEntry[];
  /** Lines that did not decode (a torn last line after a crash, a hand edit), raw. */
  bad: string[];
  /** Lines consumed, good or bad. */
  lines: number;
  /** Byte offset just past the last line consumed. */
  end: number;
}

const READ_CHUNK_BYTES = 1 << 20;
/** Buffered lines are written out at this count (and before every read and on flush). */
const APPEND_BUFFER_LINES = 256;
const FILE_RE = /^([^.]+)\.(\d+)(?:\.[^.]+)?\.ndjson$/;

/** Encodes one entry as a line, newline included. */
export function encodeEntry(e: SpoolEntry): string {
  if (e.kind === 'open') {
    const o = e.record;
    return (
      JSON.stringify({
        t: 'open',
        id: o.id,
        serverId: o.serverId,
        remoteAddr: o.remoteAddr,
        userAgent: o.userAgent,
        userId: o.userId,
        protocol: o.protocol,
        connectedAt: o.connectedAt.toISOString()
      }) + '\n'
    );
  }
  const c = e.record;
  return (
    JSON.stringify({
      t: 'close',
      id: c.id,
      disconnectedAt: c.disconnectedAt.toISOString(),
      closeCode: c.closeCode,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      messagesIn: c.messagesIn,
      messagesOut: c.messagesOut
    }) + '\n'
  );
}

function field<T>(o: Record<string, unknown>, key: string, ok: (v: unknown) => v is T): T {
  const v = o[key];
  if (!ok(v)) throw new Error(`bad spool field "${key}"`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string';
const isStringOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isProtocol = (v: unknown): v is ProtocolName => v === 'json' || v === 'bin';
function date(o: Record<string, unknown>, key: string): Date {
  const d = new Date(field(o, key, isString));
  if (Number.isNaN(d.getTime())) throw new Error(`bad spool field "${key}"`);
  return d;
}

/** Decodes one line (without its newline); throws on anything malformed. */
export function decodeEntry(line: string): SpoolEntry {
  const o: unknown = JSON.parse(line);
  if (typeof o !== 'object' || o === null) throw new Error('spool line is not an object');
  const r = o as Record<string, unknown>;
  if (r.t === 'open') {
    return {
      kind: 'open',
      record: {
        id: field(r, 'id', isString),
        serverId: field(r, 'serverId', isString),
        remoteAddr: field(r, 'remoteAddr', isString),
        userAgent: field(r, 'userAgent', isStringOrNull),
        userId: field(r, 'userId', isStringOrNull),
        protocol: field(r, 'protocol', isProtocol),
        connectedAt: date(r, 'connectedAt')
      }
    };
  }
  if (r.t === 'close') {
    return {
      kind: 'close',
      record: {
        id: field(r, 'id', isString),
        disconnectedAt: date(r, 'disconnectedAt'),
        closeCode: field(r, 'closeCode', isCount),
        bytesIn: field(r, 'bytesIn', isCount),
        bytesOut: field(r, 'bytesOut', isCount),
        messagesIn: field(r, 'messagesIn', isCount),
        messagesOut: field(r, 'messagesOut', isCount)
      }
    };
  }
  throw new Error('spool line has no known "t"');
}

/** A spool file name's label: the server id with anything but `[A-Za-z0-9_-]` replaced. */
export function spoolLabel(serverId: string): string {
  return serverId.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
}

/** The path of the spool file a writer with this label owns in this process. */
export function ownSpoolPath(dir: string, label: string): string {
  return join(dir, `${label}.${process.pid}.ndjson`);
}

/**
 * One spool file, open for reading at a committed offset and (for the writer's own
 * file) for appending. Synchronous on purpose: appends and reads interleave with the
 * hot path on one thread, so a sync call is what keeps the order exact.
 */
export class SpoolFile {
  readonly path: string;
  #fd: number | null;
  #size: number;
  #offset = 0;
  #lines: number;
  #committed = 0;
  #buffer: string[] = [];
  #bufferBytes = 0;

  private constructor(path: string, fd: number, size: number, lines: number) {
    this.path = path;
    this.#fd = fd;
    this.#size = size;
    this.#lines = lines;
  }

  /** Opens (creating it if need be) a file to append to and read back. */
  static create(path: string): SpoolFile {
    const fd = openSync(path, 'a+');
    const size = fstatSync(fd).size;
    return new SpoolFile(path, fd, size, size === 0 ? 0 : countLines(fd, size));
  }

  /** Records not yet committed (read-but-unwritten ones included). */
  get remaining(): number {
    return this.#lines - this.#committed;
  }

  /** Bytes in the file, buffered ones included. */
  get bytes(): number {
    return this.#size + this.#bufferBytes;
  }

  /** Buffers one encoded line (see {@link encodeEntry}); written out every few hundred lines and by `flush()`. */
  append(line: string): void {
    this.#buffer.push(line);
    this.#bufferBytes += Buffer.byteLength(line);
    this.#lines++;
    if (this.#buffer.length >= APPEND_BUFFER_LINES) this.flush();
  }

  /** Writes the buffered lines to the file (to the OS; no fsync: a process crash loses nothing written). */
  flush(): void {
    if (this.#buffer.length === 0 || this.#fd === null) return;
    const data = Buffer.from(this.#buffer.join(''));
    let done = 0;
    while (done < data.length) done += writeSync(this.#fd, data, done, data.length - done);
    this.#size += data.length;
    this.#buffer = [];
    this.#bufferBytes = 0;
  }

  /** Reads up to `max` lines from the committed offset, without moving it. */
  read(max: number): SpoolRead {
    this.flush();
    if (this.#fd === null) return { entries: [], bad: [], lines: 0, end: this.#offset };
    const r = readNdjson(this.#fd, this.#offset, this.#size, max, decodeEntry);
    return { entries: r.items, bad: r.bad, lines: r.lines, end: r.end };
  }

  /** Marks a read as written: the next read starts after it. */
  commit(read: SpoolRead): void {
    this.#offset = read.end;
    this.#committed += read.lines;
  }

  /** Closes the descriptor; the file stays on disk. */
  close(): void {
    this.flush();
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  /** Closes and deletes the file (everything in it is in the database). */
  remove(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
    this.#buffer = [];
    unlinkSync(this.path);
  }
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

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let claims = 0;

/**
 * Claims the orphaned spool files in `dir`, oldest first: files whose owning process
 * is gone, or is this process but no live writer holds them (`inUse`). Each is renamed
 * to this process's pid before it is opened, so two processes starting together never
 * replay the same file. Returns the claimed paths.
 */
export function claimOrphans(dir: string, inUse: ReadonlySet<string>): string[] {
  const found: Array<{ path: string; label: string; mtimeMs: number }> = [];
  for (const name of readdirSync(dir)) {
    const m = FILE_RE.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    const pid = Number(m[2]);
    if (pid === process.pid ? inUse.has(path) : isRunning(pid)) continue;
    try {
      found.push({ path, label: m[1]!, mtimeMs: statSync(path).mtimeMs });
    } catch {
      // Claimed by another process meanwhile.
    }
  }
  found.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
  const claimed: string[] = [];
  for (const f of found) {
    const target = join(dir, `${f.label}.${process.pid}.c${Date.now().toString(36)}${(claims++).toString(36)}.ndjson`);
    if (existsSync(target)) continue;
    try {
      renameSync(f.path, target);
      claimed.push(target);
    } catch {
      // Another process claimed it first.
    }
  }
  return claimed;
}
