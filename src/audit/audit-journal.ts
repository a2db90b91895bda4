/**
 * The audit journal: append-only ndjson files holding audit rows that are durable on
 * local disk but not (yet) in the database. One row per line, with the row's final id,
 * so replaying a file twice inserts nothing twice (`writeAudit` skips known ids):
 *
 *   {"id":"…","message_id":"…","at":"2026-…Z","server_id":"…","session_id":"…","user_id":null,
 *    "direction":"in","type":"broadcast","channel":"news","recipients":null,"payload_bin":null,"payload":{"text":"hi"}}
 *
 * A file is named `audit-<db>-<server>.<pid>.ndjson`, where `<db>` is a short hash of the
 * database it belongs to (see {@link journalKey}): several servers with different
 * databases may share one journal folder, and a file is only ever replayed into its own
 * database. Once another process has claimed it, it is `audit-<db>-<server>.<pid>.<tag>.ndjson`.
 * A file whose pid is no longer running is an orphan (a crash, a kill -9): the next
 * process that starts on that host with the same database renames it to its own pid —
 * an atomic claim, so two processes starting together never replay the same file — and
 * replays it. The folder must therefore be local to the host.
 *
 * Durability: a row is acknowledged once its line was handed to the kernel (`write(2)`
 * returned): it survives the process being killed (kill -9, a crash). An fdatasync
 * follows in the background, not waited for, so a power loss can take what was written
 * since the last one — the same promise as SQLite with `synchronous=NORMAL`.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fdatasync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync
} from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../store/store.js';
import { parseStoreUrl } from '../store/store-url.js';
import { readNdjson } from '../store/ndjson-read.js';

const FILE_RE = /^audit-([0-9a-f]{12})-([A-Za-z0-9_-]+)\.(\d+)(?:\.([A-Za-z0-9]+))?\.ndjson$/;

/**
 * A short, stable name for a database: a hash of the SQLite file's absolute path, or of
 * a PostgreSQL URL's user, host, port, database and options (the password left out).
 */
export function journalKey(databaseUrl: string): string {
  const where = parseStoreUrl(databaseUrl);
  let identity: string;
  if (where.kind === 'sqlite') {
    identity = `sqlite:${where.path}`;
  } else {
    const u = new URL(where.url);
    const options = u.searchParams.get('options') ?? '';
    identity = `postgres://${decodeURIComponent(u.username)}@${u.hostname}:${u.port || '5432'}${u.pathname}?${options}`;
  }
  return createHash('sha256').update(identity).digest('hex').slice(0, 12);
}

/**
 * The path of the journal file this process writes for `serverId`; `seq` > 0 names the
 * files that follow a rotation (`….r<seq>.ndjson`), so a new file never reuses the name
 * of one still on disk.
 */
export function ownJournalPath(dir: string, key: string, serverId: string, seq = 0): string {
  const suffix = seq > 0 ? `.r${seq}` : '';
  return join(dir, `audit-${key}-${serverId.replace(/[^A-Za-z0-9_-]/g, '_') || '_'}.${process.pid}${suffix}.ndjson`);
}

/** Where rows the database refused for good are set aside (never replayed). */
export function rejectedPath(dir: string, key: string): string {
  return join(dir, `audit-${key}.rejected.ndjson`);
}

/** Encodes one row as a journal line, newline included. */
export function encodeJournalLine(r: AuditRecord): string {
  const head = JSON.stringify({
    id: r.id,
    message_id: r.messageId,
    at: r.at.toISOString(),
    server_id: r.serverId,
    session_id: r.sessionId,
    user_id: r.userId,
    direction: r.direction,
    type: r.type,
    channel: r.channel,
    recipients: r.recipients,
    payload_bin: r.payloadBin === null ? null : Buffer.from(r.payloadBin.buffer, r.payloadBin.byteOffset, r.payloadBin.byteLength).toString('base64')
  });
  // The payload is spliced in as JSON, not as a string holding JSON: the file stays readable.
  return head.slice(0, -1) + ',"payload":' + (r.payload ?? 'null') + '}\n';
}

const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** Decodes one journal line (without its newline); throws on anything malformed. */
export function decodeJournalLine(line: string): AuditRecord {
  const o = JSON.parse(line) as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw new Error('journal line is not an object');
  const at = new Date(str(o.at) ? o.at : NaN);
  const recipients = o.recipients;
  if (
    !str(o.id) ||
    !strOrNull(o.message_id) ||
    Number.isNaN(at.getTime()) ||
    !str(o.server_id) ||
    !strOrNull(o.session_id) ||
    !strOrNull(o.user_id) ||
    !str(o.direction) ||
    !str(o.type) ||
    !strOrNull(o.channel) ||
    !(recipients === null || (typeof recipients === 'number' && Number.isSafeInteger(recipients))) ||
    !strOrNull(o.payload_bin)
  ) {
    throw new Error('bad journal line');
  }
  return {
    id: o.id,
    messageId: o.message_id,
    at,
    serverId: o.server_id,
    sessionId: o.session_id,
    userId: o.user_id,
    direction: o.direction,
    type: o.type,
    channel: o.channel,
    recipients,
    payload: o.payload === null || o.payload === undefined ? null : JSON.stringify(o.payload),
    payloadBin: o.payload_bin === null ? null : Buffer.from(o.payload_bin, 'base64')
  };
}

/** The result of {@link JournalFile.read}: rows to write, then {@link JournalFile.commit}. */
export interface JournalRead {
  records: AuditRecord[];
  /** Lines that did not decode (a torn last line after a crash, a hand edit), raw. */
  bad: string[];
  /** Lines consumed, good or bad. */
  lines: number;
  /** Byte offset just past the last line consumed. */
  end: number;
}

/**
 * One journal file, open for appending (the writer's own file) and for reading back at a
 * committed offset. Synchronous on purpose, as the record spool is: appends interleave
 * with the hot path on one thread, and a sync write keeps the order exact.
 */
export class JournalFile {
  readonly path: string;
  #fd: number | null;
  #size: number;
  #offset = 0;
  #syncing = 0;
  #closeWhenSynced = false;

  private constructor(path: string, fd: number, size: number) {
    this.path = path;
    this.#fd = fd;
    this.#size = size;
  }

  /** Opens (creating the folder and the file if need be) a file to append to and read back. */
  static open(path: string, dir: string): JournalFile {
    mkdirSync(dir, { recursive: true });
    const fd = openSync(path, 'a+');
    return new JournalFile(path, fd, fstatSync(fd).size);
  }

  /** Bytes in the file. */
  get bytes(): number {
    return this.#size;
  }

  /** Whether every byte written has been read and committed. */
  get drained(): boolean {
    return this.#offset >= this.#size;
  }

  /**
   * Appends whole lines. On a failure (a full disk) the file is cut back to where it was,
   * so a torn line never sits in front of the next append, and the error is thrown.
   */
  append(text: string): void {
    if (this.#fd === null) throw new Error(`journal ${this.path} is closed`);
    const data = Buffer.from(text);
    let done = 0;
    try {
      while (done < data.length) done += writeSync(this.#fd, data, done, data.length - done);
    } catch (err) {
      if (done > 0) {
        try {
          ftruncateSync(this.#fd, this.#size);
        } catch {
          // The read side skips a torn line anyway.
        }
      }
      throw err;
    }
    this.#size += data.length;
  }

  /** fdatasync: resolves once every byte appended before the call is on the disk. */
  sync(): Promise<void> {
    const fd = this.#fd;
    if (fd === null) return Promise.resolve();
    this.#syncing++;
    return new Promise<void>((resolve, reject) => {
      fdatasync(fd, (err) => {
        this.#syncing--;
        if (this.#syncing === 0 && this.#closeWhenSynced) this.#finish();
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** Reads up to `max` lines from the committed offset, without moving it. */
  read(max: number): JournalRead {
    if (this.#fd === null) return { records: [], bad: [], lines: 0, end: this.#offset };
    const r = readNdjson(this.#fd, this.#offset, this.#size, max, decodeJournalLine);
    return { records: r.items, bad: r.bad, lines: r.lines, end: r.end };
  }

  /** Marks a read as written to the database: the next read starts after it. */
  commit(read: JournalRead): void {
    this.#offset = Math.max(this.#offset, read.end);
  }

  /** Closes the descriptor (once pending syncs are done); the file stays on disk. */
  close(): void {
    this.#closeWhenSynced = true;
    if (this.#syncing === 0) this.#finish();
  }

  /**
   * Deletes the file (everything in it is in the database) and closes it. The name goes
   * at once — a file opened at the same path right after is a new one — while the
   * descriptor waits for a pending fdatasync.
   */
  remove(): void {
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone.
    }
    this.close();
  }

  #finish(): void {
    const fd = this.#fd;
    this.#fd = null;
    if (fd !== null) closeSync(fd);
  }
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
 * Claims the orphaned journal files of database `key` in `dir`, oldest first: files whose
 * process is gone, or is this process but held by no live writer (`inUse`: a pid reused
 * after a restart in a container). Each is renamed to this process's pid before it is
 * read, so two processes never replay the same file. Returns the claimed paths.
 */
export function claimOrphanJournals(dir: string, key: string, inUse: ReadonlySet<string>): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: Array<{ path: string; server: string; mtimeMs: number }> = [];
  for (const name of names) {
    const m = FILE_RE.exec(name);
    if (!m || m[1] !== key) continue;
    const path = join(dir, name);
    const pid = Number(m[3]);
    if (pid === process.pid ? inUse.has(path) : isRunning(pid)) continue;
    try {
      found.push({ path, server: m[2]!, mtimeMs: statSync(path).mtimeMs });
    } catch {
      // Claimed by another process meanwhile.
    }
  }
  found.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
  const claimed: string[] = [];
  for (const f of found) {
    const target = join(dir, `audit-${key}-${f.server}.${process.pid}.c${Date.now().toString(36)}${(claims++).toString(36)}.ndjson`);
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

/** Removes a file, ignoring one that is already gone. */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
