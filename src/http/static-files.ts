/**
 * Static files (the demo console under `public/`), served with `send`.
 *
 * `send` does the HTTP part: Content-Type, Content-Length, ETag, Last-Modified,
 * conditional GET (304/412), HEAD and single byte ranges (206/416). This file does
 * the part `send` does not: it keeps every request inside the root. The request path
 * is checked before it reaches the file system (no `..`, no encoded `/` or `\`, no
 * backslash, no NUL, no dotfile, bounded length), then resolved with `realpath` and
 * checked against the root's own realpath, so a symlink (to a file or a directory)
 * that leads out of the root is a 404 like a missing file. Only regular files are
 * served (never a FIFO, device or socket), directories only through their index file,
 * never as a listing.
 */
import { realpathSync, statSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { join, relative, sep } from 'node:path';
import send from 'send';
import { ZenError } from '../errors.js';

/** Options of {@link createStaticHandler}. */
export interface StaticHandlerOptions {
  /** The folder to serve. Must exist and be a directory when the handler is created. */
  root: string;
  /**
   * The file served for a directory URL that ends in `/`. A plain file name (no `/`,
   * not a dotfile). Default: `'index.html'`.
   */
  index?: string;
  /**
   * Longest request path (before the query string) accepted, in characters of the
   * raw, still percent-encoded path; a longer one is a 400. Default: 2048.
   */
  maxPathBytes?: number;
}

/** A request handler for GET and HEAD; see {@link createStaticHandler}. */
export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => void;

const DEFAULT_INDEX = 'index.html';
const DEFAULT_MAX_PATH_BYTES = 2048;
// Percent-encoded `/`, `\` and NUL: a path that needs them is never a file of ours.
const ENCODED_FORBIDDEN_RE = /%(?:2f|5c|00)/i;
// Characters a Location header may carry as they are; the rest is percent-encoded.
const LOCATION_UNSAFE_RE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%?]/gu;

/** The errors of `send` carry the status they mean and, for a 416, the Content-Range. */
interface SendError extends Error {
  status?: number;
  statusCode?: number;
  headers?: Record<string, string>;
}

/**
 * Creates a handler that serves the files under `options.root` to GET and HEAD.
 *
 * - 200 with Content-Type (from the extension; `application/octet-stream` if unknown),
 *   Content-Length, ETag, Last-Modified, `Cache-Control: public, max-age=0`,
 *   `Accept-Ranges: bytes`, `X-Content-Type-Options: nosniff`; no compression.
 * - 304 for a conditional GET that is still fresh (If-None-Match, If-Modified-Since),
 *   412 when If-Match / If-Unmodified-Since fail.
 * - 206 with Content-Range for a single satisfiable `Range: bytes=…`, 416 (with
 *   `Content-Range: bytes *\/size`) for an unsatisfiable one; several ranges get the
 *   whole file (200), as `send` does.
 * - A directory URL ending in `/` serves the directory's index file (404 if it has
 *   none: there is no listing). A directory URL without the trailing slash is
 *   redirected with 301 to the slash form (query string kept), so relative links in
 *   the index resolve against the directory.
 * - 404 for a missing file, a dotfile or dot-directory anywhere in the path, a file
 *   requested with a trailing slash, anything that is not a regular file, and any path
 *   whose realpath (symlinks followed) is outside the root's realpath.
 * - 400 for a path that is malformed or could only mean an escape: not starting with
 *   `/`, longer than `maxPathBytes`, bad percent-encoding, an encoded `/` (`%2f`),
 *   any backslash (raw or `%5c`), a NUL (`%00`). 403 for a `..` segment, raw or encoded.
 * - 405 with `Allow: GET, HEAD` for any other method.
 * Error responses have a short `text/plain` body such as `404 Not Found`.
 *
 * The root's realpath is resolved once, here; a root that does not exist or is not a
 * directory throws `ERR_CONFIG_INVALID`. Per request it costs one `realpath` and one
 * `stat` beyond what `send` does. A file swapped for a symlink between the check and
 * `send`'s open is not caught; that needs write access to the root.
 */
export function createStaticHandler(options: StaticHandlerOptions): StaticHandler {
  const index = options.index ?? DEFAULT_INDEX;
  if (index === '' || index.includes('/') || index.includes('\\') || index.includes('\0') || index.startsWith('.')) {
    throw new ZenError('ERR_CONFIG_INVALID', `static index "${index}" must be a plain file name`);
  }
  const maxPathBytes = options.maxPathBytes ?? DEFAULT_MAX_PATH_BYTES;
  if (!Number.isInteger(maxPathBytes) || maxPathBytes < 1) {
    throw new ZenError('ERR_CONFIG_INVALID', `static maxPathBytes must be a positive integer, got ${maxPathBytes}`);
  }
  let rootReal: string;
  try {
    rootReal = realpathSync.native(options.root);
    if (!statSync(rootReal).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new ZenError('ERR_CONFIG_INVALID', `static root "${options.root}": ${(err as Error).message}`);
  }
  const rootPrefix = rootReal.endsWith(sep) ? rootReal : rootReal + sep;
  const isInside = (p: string): boolean => p === rootReal || p.startsWith(rootPrefix);
  const sendOptions: send.SendOptions = {
    root: rootReal,
    index: false,
    dotfiles: 'ignore',
    etag: true,
    lastModified: true,
    acceptRanges: true
  };

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      plain(res, 405);
      return;
    }
    const url = req.url ?? '';
    const h = url.indexOf('#');
    const target = h === -1 ? url : url.slice(0, h);
    const q = target.indexOf('?');
    const rawPath = q === -1 ? target : target.slice(0, q);
    const query = q === -1 ? '' : target.slice(q);
    if (rawPath[0] !== '/' || rawPath.length > maxPathBytes || rawPath.includes('\\') || ENCODED_FORBIDDEN_RE.test(rawPath)) {
      plain(res, 400);
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      plain(res, 400);
      return;
    }
    if (path.includes('\0')) {
      plain(res, 400);
      return;
    }
    for (const segment of path.split('/')) {
      if (segment === '..') {
        plain(res, 403);
        return;
      }
      if (segment[0] === '.') {
        plain(res, 404);
        return;
      }
    }

    // Lexically inside the root now; realpath settles symlinks.
    const real = await resolveInside(join(rootReal, path));
    if (real === null) {
      plain(res, 404);
      return;
    }
    let file = real.path;
    if (real.isDirectory) {
      if (!path.endsWith('/')) {
        const location = collapseLeadingSlashes(rawPath) + '/' + query;
        res.setHeader('Location', location.replace(LOCATION_UNSAFE_RE, encodeURIComponent));
        plain(res, 301);
        return;
      }
      const indexReal = await resolveInside(join(real.path, index));
      if (indexReal === null || indexReal.isDirectory) {
        plain(res, 404);
        return;
      }
      file = indexReal.path;
    } else if (path.endsWith('/')) {
      plain(res, 404);
      return;
    }

    // Hand send the resolved file (no symlink left in it), relative to the real root.
    const rel = relative(rootReal, file).split(sep).map(encodeURIComponent).join('/');
    const stream = send(req, '/' + rel, sendOptions);
    stream.on('headers', (r: ServerResponse) => r.setHeader('X-Content-Type-Options', 'nosniff'));
    stream.on('directory', () => plain(res, 404));
    stream.on('error', (err: SendError) => {
      const status = err.status ?? err.statusCode ?? 500;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      if (err.headers !== undefined) {
        for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
      }
      plain(res, status);
    });
    stream.pipe(res);
  }

  /**
   * The realpath of `p` and whether it is a directory, or null when it does not exist,
   * is outside the root, or is neither a regular file nor a directory.
   */
  async function resolveInside(p: string): Promise<{ path: string; isDirectory: boolean } | null> {
    let resolved: string;
    try {
      resolved = await realpath(p);
    } catch {
      // ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP, EACCES: all "not here".
      return null;
    }
    if (!isInside(resolved)) return null;
    try {
      const st = await stat(resolved);
      if (st.isDirectory()) return { path: resolved, isDirectory: true };
      if (st.isFile()) return { path: resolved, isDirectory: false };
      return null;
    } catch {
      return null;
    }
  }

  return (req, res) => {
    serve(req, res).catch(() => {
      if (res.headersSent) res.destroy();
      else plain(res, 500);
    });
  };
}

/** Ends `res` with `status` and a one-line text/plain body (none for HEAD, by Node). */
function plain(res: ServerResponse, status: number): void {
  const body = `${status} ${STATUS_CODES[status] ?? 'Error'}\n`;
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(body);
}

/** `//evil.example/x` would be a protocol-relative redirect: keep one leading slash. */
function collapseLeadingSlashes(p: string): string {
  let i = 0;
  while (i < p.length && p[i] === '/') i++;
  return i > 1 ? '/' + p.slice(i) : p;
}
