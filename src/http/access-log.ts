/**
 * The access log, in nginx's format so that existing tools (goaccess, fail2ban,
 * awk one-liners) read it: `compileFormat` turns an nginx `log_format` string into a
 * line builder, `AccessLog` writes the lines, buffered and asynchronous, to stdout or
 * a file that logrotate can rotate (`reopen()` on SIGUSR1, as nginx does).
 *
 * Tokens in the query string (`access_token`, `token`) never reach the log: the URI is
 * redacted once per line, before any variable that contains it is written.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { ZenError } from '../errors.js';

/** One request (or one WebSocket session) as the access log sees it. */
export interface AccessLogEntry {
  /** Client address (`$remote_addr`); IPv4-mapped IPv6 addresses are best given as plain IPv4. */
  remoteAddr: string;
  /** Authenticated user name (`$remote_user`); null prints `-`. */
  remoteUser: string | null;
  /** When the request started (`$time_local`, `$time_iso8601`). */
  time: Date;
  /** Request method, e.g. `GET`. */
  method: string;
  /** Request target as received, query string included (redacted when written). */
  url: string;
  /** HTTP version without the prefix, e.g. `1.1`. */
  httpVersion: string;
  /** Response status; 101 for a WebSocket session, 499 for a request the client gave up on. */
  status: number;
  /** Body bytes sent to the client (`$body_bytes_sent`); for a WebSocket, the bytes sent over the session. */
  bodyBytesSent: number;
  /** `Referer` request header; null prints `-`. */
  referer: string | null;
  /** `User-Agent` request header; null prints `-`. */
  userAgent: string | null;
  /** Time from the request's start to the end of the response, in milliseconds (`$request_time`). */
  durationMs: number;
  /** Bytes of the response header block, added to the body for `$bytes_sent`. Default: 0. */
  headerBytes?: number;
}

/** nginx's `combined` format, the default of {@link AccessLog}. */
export const COMBINED =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';

/** Query parameters whose values are written as `***` (names compared case-insensitively, after decoding). */
const REDACTED_PARAMS: ReadonlySet<string> = new Set(['access_token', 'token']);

/** A line builder returned by {@link compileFormat}. */
export type AccessLogFormatter = (e: AccessLogEntry) => string;

/** What a variable reads; `uri` is the entry's URL, already redacted. */
type Getter = (e: AccessLogEntry, uri: string) => string;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const VARIABLES: Readonly<Record<string, { get: Getter; usesUri: boolean }>> = {
  remote_addr: { get: (e) => field(e.remoteAddr), usesUri: false },
  remote_user: { get: (e) => field(e.remoteUser), usesUri: false },
  time_local: { get: (e) => timeLocal(e.time), usesUri: false },
  time_iso8601: { get: (e) => timeIso8601(e.time), usesUri: false },
  request: {
    get: (e, uri) => (e.method === '' && uri === '' ? '-' : escapeLogValue(`${e.method} ${uri} HTTP/${e.httpVersion}`)),
    usesUri: true
  },
  request_method: { get: (e) => field(e.method), usesUri: false },
  request_uri: { get: (_e, uri) => field(uri), usesUri: true },
  server_protocol: { get: (e) => (e.httpVersion === '' ? '-' : escapeLogValue(`HTTP/${e.httpVersion}`)), usesUri: false },
  status: { get: (e) => String(e.status), usesUri: false },
  body_bytes_sent: { get: (e) => String(e.bodyBytesSent), usesUri: false },
  bytes_sent: { get: (e) => String(e.bodyBytesSent + (e.headerBytes ?? 0)), usesUri: false },
  http_referer: { get: (e) => field(e.referer), usesUri: false },
  http_user_agent: { get: (e) => field(e.userAgent), usesUri: false },
  request_time: { get: (e) => (Math.max(0, e.durationMs) / 1000).toFixed(3), usesUri: false }
};

/** The variable names {@link compileFormat} accepts (without `$`). */
export const FORMAT_VARIABLES: readonly string[] = Object.freeze(Object.keys(VARIABLES));

const VARIABLE_RE = /\$(?:\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]*))/g;

/**
 * Compiles an nginx `log_format` string into a function from entry to line (without
 * the newline). Variables are written `$name` or `${name}`; the supported names are
 * {@link FORMAT_VARIABLES}: `$remote_addr $remote_user $time_local $time_iso8601
 * $request $request_method $request_uri $server_protocol $status $body_bytes_sent
 * $bytes_sent $http_referer $http_user_agent $request_time`.
 *
 * As nginx does (`escape=default`): an empty or null value prints `-`; in string
 * values `"`, `\`, control characters and every byte above 0x7e (of the UTF-8
 * encoding) are written `\xHH`. `$time_local` is `27/Nov/2026:06:30:46 +0000` and
 * `$time_iso8601` `2026-11-27T06:30:46+00:00`, both in the process's local time zone;
 * `$request_time` is seconds with millisecond resolution (`0.012`). `$request` and
 * `$request_uri` carry the URL with `access_token` and `token` values replaced by `***`.
 *
 * @throws ZenError `ERR_CONFIG_INVALID` naming the variable, for an unknown variable
 *   or a `$` not followed by a name.
 */
export function compileFormat(format: string): AccessLogFormatter {
  const literals: string[] = [];
  const getters: Getter[] = [];
  let usesUri = false;
  let last = 0;
  for (const m of format.matchAll(VARIABLE_RE)) {
    const name = m[1] ?? m[2] ?? '';
    const at = m.index ?? 0;
    if (name === '') {
      throw new ZenError('ERR_CONFIG_INVALID', `access log format: "$" without a variable name at offset ${at} in "${format}"`);
    }
    const v = Object.hasOwn(VARIABLES, name) ? VARIABLES[name] : undefined;
    if (v === undefined) {
      throw new ZenError(
        'ERR_CONFIG_INVALID',
        `access log format: unknown variable "$${name}" (supported: ${FORMAT_VARIABLES.map((n) => '$' + n).join(' ')})`
      );
    }
    literals.push(format.slice(last, at));
    getters.push(v.get);
    usesUri ||= v.usesUri;
    last = at + m[0].length;
  }
  const tail = format.slice(last);
  const n = getters.length;
  return (e) => {
    const uri = usesUri ? redactUrl(e.url) : '';
    let line = '';
    for (let i = 0; i < n; i++) line += literals[i] + getters[i]!(e, uri);
    return line + tail;
  };
}

/**
 * Replaces the value of every `access_token` and `token` query parameter in `url`
 * with `***` (`/?access_token=***&protocol=bin`). Parameter names are compared after
 * percent-decoding and case-insensitively, so `access%5Ftoken=` is caught too.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const query = url.slice(q + 1);
  // Fast path: nothing that could spell a token name.
  if (!/token|%/i.test(query)) return url;
  const parts = query.split('&');
  let changed = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const rawName = part.slice(0, eq);
    let name = rawName.replace(/\+/g, ' ');
    try {
      name = decodeURIComponent(name);
    } catch {
      // keep the raw name: a malformed escape cannot decode to a token name anyway
    }
    if (REDACTED_PARAMS.has(name.toLowerCase())) {
      parts[i] = rawName + '=***';
      changed = true;
    }
  }
  return changed ? url.slice(0, q + 1) + parts.join('&') : url;
}

// Everything outside 0x20–0x7e, plus `"` and `\`.
const NEEDS_ESCAPE_RE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
const HEX = '0123456789ABCDEF';

/** nginx's `escape=default`: `"`, `\`, bytes below 0x20 and above 0x7e become `\xHH`. */
export function escapeLogValue(value: string): string {
  if (!NEEDS_ESCAPE_RE.test(value)) return value;
  const bytes = Buffer.from(value, 'utf8');
  let out = '';
  for (const b of bytes) {
    if (b < 0x20 || b > 0x7e || b === 0x22 || b === 0x5c) out += '\\x' + HEX[b >> 4] + HEX[b & 15];
    else out += String.fromCharCode(b);
  }
  return out;
}

function field(value: string | null): string {
  return value === null || value === '' ? '-' : escapeLogValue(value);
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** `+0530` / `-0330` for the local offset at `d` (getTimezoneOffset has the opposite sign). */
function offset(d: Date, colon: boolean): string {
  const off = -d.getTimezoneOffset();
  const abs = Math.abs(off);
  return (off < 0 ? '-' : '+') + pad2(Math.floor(abs / 60)) + (colon ? ':' : '') + pad2(abs % 60);
}

// Most lines of a busy second share their timestamp: format it once per second.
let localSecond = NaN;
let localText = '';
function timeLocal(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== localSecond) {
    localText =
      `${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${offset(d, false)}`;
    localSecond = second;
  }
  return localText;
}

let isoSecond = NaN;
let isoText = '';
function timeIso8601(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== isoSecond) {
    isoText =
      `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}${offset(d, true)}`;
    isoSecond = second;
  }
  return isoText;
}

const kBodyBytes = Symbol('zenconn.bodyBytes');
const kRemoteAddr = Symbol('zenconn.remoteAddr');
const CONTENT_LENGTH_RE = /\r\ncontent-length:[ \t]*(\d+)/i;
interface TrackedResponse extends ServerResponse {
  [kBodyBytes]?: number;
  [kRemoteAddr]?: string | undefined;
}

function chunkBytes(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/**
 * Prepares `res` for {@link entryFromHttp}; call it when the request arrives, before
 * anything is written. It does two things a finished response cannot do afterwards:
 * - remembers the client address, which a socket no longer reports once the client
 *   has gone (so a 499 line still has it);
 * - counts the body bytes written through `write` and `end` (which `pipe` uses too),
 *   so `$body_bytes_sent` is exact for a response without Content-Length (chunked).
 * Chunked-encoding framing is not counted; on a response cut short, the count is what
 * was handed to Node, which may exceed what reached the client. Calling it twice is
 * harmless. Cost: two closures per response.
 */
export function trackBodyBytes(res: ServerResponse): void {
  const tracked = res as TrackedResponse;
  if (tracked[kBodyBytes] !== undefined) return;
  tracked[kBodyBytes] = 0;
  tracked[kRemoteAddr] = res.socket?.remoteAddress;
  const write = res.write;
  const end = res.end;
  // The overloads of write/end are wider than one signature; forward arguments as they came.
  res.write = function (this: ServerResponse, ...args: unknown[]): boolean {
    tracked[kBodyBytes]! += chunkBytes(args[0], args[1]);
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (typeof args[0] !== 'function') tracked[kBodyBytes]! += chunkBytes(args[0], args[1]);
    return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['end'];
}

/**
 * Builds the entry of a finished HTTP response; call it from the response's 'finish'
 * (or 'close') event. `startedAt` is `process.hrtime.bigint()` and `time` the `Date`,
 * both taken when the request arrived.
 *
 * `bodyBytesSent`: 0 for HEAD, 1xx, 204 and 304 (Node sends no body); otherwise the
 * count of {@link trackBodyBytes} when it was installed; else, for a response that
 * ended normally, the Content-Length it was sent with (the one set by the handler or
 * `send`, or the one Node adds to `res.end(body)`); else 0 (a chunked response
 * without tracking, or one cut short). It is never taken from `socket.bytesWritten`,
 * which mixes responses on a keep-alive connection. `status` is 499 (nginx's "client closed request") when the
 * connection closed before the response head was sent. `remoteUser` is null;
 * `remoteAddr` is the one {@link trackBodyBytes} saw, else the socket's (empty, so `-`,
 * once the client has gone), with IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as
 * plain IPv4.
 */
export function entryFromHttp(req: IncomingMessage, res: ServerResponse, startedAt: bigint, time: Date): AccessLogEntry {
  const method = req.method ?? '';
  const status = res.headersSent || res.writableFinished ? res.statusCode : 499;
  // `_header` is the header block Node sent (morgan reads it too): its size is in
  // $bytes_sent, and its Content-Length counts the body when nothing was tracked,
  // including the one Node adds itself to `res.end(body)`.
  const head = (res as unknown as { _header?: unknown })._header;
  let bodyBytesSent = 0;
  if (method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304 && status !== 499) {
    const tracked = (res as TrackedResponse)[kBodyBytes];
    if (tracked !== undefined) {
      bodyBytesSent = tracked;
    } else if (res.writableFinished) {
      const m = typeof head === 'string' ? CONTENT_LENGTH_RE.exec(head) : null;
      const declared = Number(m !== null ? m[1] : res.getHeader('content-length'));
      if (Number.isSafeInteger(declared) && declared >= 0) bodyBytesSent = declared;
    }
  }
  let remoteAddr = (res as TrackedResponse)[kRemoteAddr] ?? req.socket.remoteAddress ?? '';
  if (remoteAddr.startsWith('::ffff:') && remoteAddr.includes('.')) remoteAddr = remoteAddr.slice(7);
  return {
    remoteAddr,
    remoteUser: null,
    time,
    method,
    url: req.url ?? '',
    httpVersion: req.httpVersion ?? '',
    status,
    bodyBytesSent,
    referer: headerValue(req.headers.referer),
    userAgent: headerValue(req.headers['user-agent']),
    durationMs: Number(process.hrtime.bigint() - startedAt) / 1e6,
    headerBytes: typeof head === 'string' ? Buffer.byteLength(head, 'latin1') : 0
  };
}

function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}

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
   * Most bytes of lines waiting to be written (our buffer plus the stream's); a line
   * that would go over is dropped and counted in `droppedLines`, so a stalled disk
   * cannot grow memory without end. Default: 8 MiB.
   */
  maxBufferedBytes?: number;
  /** Called with a write or open error of the destination. Default: one line on stderr. */
  onError?: (err: Error) => void;
}

const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
// Hand a batch to the stream once it is this big, without waiting for the next tick.
const BATCH_BYTES = 64 * 1024;

/**
 * Writes access log lines. `log` appends the line to a batch that is handed to the
 * stream on the next turn of the event loop (or at 64 KiB), so the hot path is one
 * string concatenation; the file is opened once and appended to (`O_APPEND`).
 *
 * Ordering and rotation: lines are written in `log` order. `reopen()` hands the
 * current batch to the open file, lets it finish writing there, and opens the path
 * anew for the lines that follow, which wait until the old file is closed; so after
 * logrotate's rename every line before the `reopen()` is in the renamed file and every
 * line after it in the new one, none lost, and a reopen without a rename keeps the
 * order too.
 * `close()` writes everything pending, closes the file(s) and resolves. After
 * `close()`, `log` does nothing. With `'off'` every method is a no-op.
 */
export class AccessLog {
  /** The destination as given: `'-'`, `'off'` or the file path. */
  readonly destination: string;
  readonly #format: AccessLogFormatter;
  readonly #maxBufferedBytes: number;
  readonly #onError: (err: Error) => void;
  readonly #file: string | null;
  #target: Writable | null;
  #pending = '';
  #scheduled = false;
  #closed = false;
  #dropped = 0;
  readonly #ready: Promise<void>;
  /** Streams being closed: close() waits for them. */
  readonly #retiring = new Set<Promise<void>>();
  /** Opens when every stream before the current one is closed; until then it stays corked. */
  #gate: Promise<void> = Promise.resolve();

  /**
   * @throws ZenError `ERR_CONFIG_INVALID` for an unknown format variable, a bad
   *   `maxBufferedBytes`, or a log directory that cannot be created.
   */
  constructor(options: AccessLogOptions = {}) {
    this.destination = options.destination ?? '-';
    this.#format = compileFormat(options.format ?? COMBINED);
    this.#maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    if (!Number.isInteger(this.#maxBufferedBytes) || this.#maxBufferedBytes < 1) {
      throw new ZenError('ERR_CONFIG_INVALID', `access log maxBufferedBytes must be a positive integer, got ${this.#maxBufferedBytes}`);
    }
    this.#onError =
      options.onError ?? ((err) => process.stderr.write(`zenconn: access log ${this.destination}: ${err.message}\n`));
    if (this.destination === 'off') {
      this.#file = null;
      this.#target = null;
      this.#ready = Promise.resolve();
    } else if (this.destination === '-' || this.destination === '') {
      this.#file = null;
      this.#target = process.stdout;
      this.#ready = Promise.resolve();
    } else {
      this.#file = this.destination;
      try {
        mkdirSync(dirname(this.#file), { recursive: true });
      } catch (err) {
        throw new ZenError('ERR_CONFIG_INVALID', `access log "${this.#file}": ${(err as Error).message}`);
      }
      const stream = this.#open(this.#file);
      this.#target = stream;
      this.#ready = new Promise<void>((resolve, reject) => {
        stream.once('ready', resolve);
        stream.once('error', reject);
      });
      // ready() is optional: an open error is also reported through onError.
      this.#ready.catch(() => undefined);
    }
  }

  /** Resolves once the file is open (at once for stdout and `'off'`); rejects with the open error. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Lines dropped because more than `maxBufferedBytes` were waiting, or the file could not be written. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** Formats `entry` and queues the line. Never throws, never blocks. */
  log(entry: AccessLogEntry): void {
    const target = this.#target;
    if (target === null || this.#closed) return;
    const line = this.#format(entry) + '\n';
    // Lines are ASCII after escaping (bar literal text in the format), so length ≈ bytes.
    if (target.destroyed || this.#pending.length + line.length + target.writableLength > this.#maxBufferedBytes) {
      this.#dropped++;
      return;
    }
    this.#pending += line;
    if (this.#pending.length >= BATCH_BYTES) {
      this.#flush();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#onTick);
    }
  }

  /**
   * Reopens the file at the same path (for SIGUSR1 after logrotate renamed it): lines
   * logged before go to the old file, lines after to the new one. Also retries a file
   * that failed to open or write. A no-op for stdout, `'off'` and after `close()`.
   */
  reopen(): void {
    if (this.#file === null || this.#closed) return;
    this.#flush();
    try {
      mkdirSync(dirname(this.#file), { recursive: true });
    } catch {
      // the open below reports the error
    }
    const next = this.#open(this.#file);
    // Two descriptors on one path (a reopen without a rename) would interleave their
    // writes: the new stream holds its lines (corked, within maxBufferedBytes) until
    // the old one has written everything and closed.
    next.cork();
    const oldClosed = this.#retire(this.#target as WriteStream, this.#gate);
    this.#gate = oldClosed.then(() => {
      if (next.writableCorked > 0) next.uncork();
    });
    this.#target = next;
  }

  /** Writes every pending line, closes the file, and resolves when all is on disk (stdout: handed to it). */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#flush();
      this.#closed = true;
      const target = this.#target;
      if (this.#file !== null) {
        this.#retire(target as WriteStream, this.#gate);
      } else if (target !== null && !target.destroyed && target.writableLength > 0) {
        // stdout is not ours to end: wait for what we handed it.
        await new Promise<void>((resolve) => target.write('', () => resolve()));
      }
    }
    await Promise.all(this.#retiring);
  }

  readonly #onTick = (): void => {
    this.#scheduled = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#pending === '' || this.#target === null) return;
    const data = this.#pending;
    this.#pending = '';
    if (this.#target.destroyed) {
      this.#dropped += countLines(data);
      return;
    }
    this.#target.write(data);
  }

  #open(file: string): WriteStream {
    const stream = createWriteStream(file, { flags: 'a' });
    stream.on('error', (err) => this.#onError(err));
    return stream;
  }

  /**
   * Once `gate` opens (the streams before it are closed), ends `stream` after what it
   * holds is written; the promise resolves when it is closed.
   */
  #retire(stream: WriteStream, gate: Promise<void>): Promise<void> {
    const p = gate
      .then(
        () =>
          new Promise<void>((resolve) => {
            if (stream.closed) {
              resolve();
              return;
            }
            stream.once('close', () => resolve());
            if (!stream.destroyed) stream.end();
          })
      )
      .then(() => {
        this.#retiring.delete(p);
      });
    this.#retiring.add(p);
    return p;
  }
}

function countLines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
