/**
 * The access log's format, nginx's, so that existing tools (goaccess, fail2ban, awk
 * one-liners) read it: `compileFormat` turns an nginx `log_format` string into a line
 * builder. The writer is `access-log-writer.ts`; the entry of an HTTP response is built
 * by `logged-response.ts`.
 *
 * Tokens in the query string (`access_token`, `token`) never reach the log: the URI is
 * redacted once per line, before any variable that contains it is written.
 */
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
  /**
   * Bytes sent besides the body (the header block, and the chunk framing of a chunked
   * response), added to the body for `$bytes_sent`. Default: 0.
   */
  headerBytes?: number;
}

/** nginx's `combined` format, the default of the access log. */
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
