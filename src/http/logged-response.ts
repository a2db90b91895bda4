/**
 * What the access log needs to know of an HTTP response, gathered without reaching into
 * Node's private state: the response class the server makes (`LoggedResponse`), and the
 * entry built from it when the response is done (`entryFromHttp`).
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { AccessLogEntry } from './access-log.js';

// Node passes the socket's highWaterMark (and more) as a second argument its typings omit.
const NodeServerResponse = ServerResponse as typeof ServerResponse &
  (new <Request extends IncomingMessage = IncomingMessage>(req: Request, options?: object) => ServerResponse<Request>);

/**
 * The server's response class: `createServer({ ServerResponse: LoggedResponse }, …)`.
 * It is an ordinary `ServerResponse` that also keeps, for the access log:
 * - the client's address as it was when the request arrived (a socket no longer
 *   reports it once the client has gone, and a 499 line still wants it);
 * - the body bytes the handler gave `write` and `end` (which `pipe` uses too), before
 *   any chunk framing: exact for a chunked response, which has no Content-Length;
 * - the bytes this response put on the socket (the socket's `bytesWritten`, from when
 *   the response got the socket to when its last byte was handed over), so that
 *   `$bytes_sent` counts the header block without reading Node's private `_header`.
 *   On a keep-alive connection each response counts only its own bytes: a pipelined
 *   response gets the socket after the one before it has finished.
 */
export class LoggedResponse<Request extends IncomingMessage = IncomingMessage> extends NodeServerResponse<Request> {
  /** Body bytes given to `write` and `end`; on a response cut short, what was handed to Node. */
  bodyBytes = 0;
  /** The client's address when the request arrived. */
  readonly clientAddress: string | undefined;
  /** The request target as it arrived (a handler may rewrite `req.url` to serve another file). */
  readonly requestUrl: string | undefined;
  private wire: Socket | null = null;
  private wireStart = 0;
  private wireEnd = -1;

  constructor(req: Request, options?: object) {
    super(req, options);
    this.clientAddress = req.socket.remoteAddress;
    this.requestUrl = req.url;
    this.once('socket', (socket: Socket) => {
      this.wire = socket;
      this.wireStart = socket.bytesWritten ?? 0;
    });
    // `prefinish`: every byte of this response is handed to the socket, and no byte of the next.
    this.once('prefinish', () => {
      if (this.wire !== null) this.wireEnd = this.wire.bytesWritten ?? -1;
    });
  }

  /** Bytes this response put on the socket so far: status line, headers, body and chunk framing. */
  get wireBytes(): number {
    if (this.wire === null) return 0;
    const end = this.wireEnd >= 0 ? this.wireEnd : (this.wire.bytesWritten ?? this.wireStart);
    return Math.max(0, end - this.wireStart);
  }

  // The overloads of write/end are wider than one signature; forward arguments as they came.
  override write(...args: unknown[]): boolean {
    this.bodyBytes += chunkBytes(args[0], args[1]);
    return (super.write as (...a: unknown[]) => boolean).apply(this, args);
  }

  override end(...args: unknown[]): this {
    if (typeof args[0] !== 'function') this.bodyBytes += chunkBytes(args[0], args[1]);
    return (super.end as (...a: unknown[]) => this).apply(this, args);
  }
}

function chunkBytes(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/**
 * Builds the entry of a finished HTTP response; call it from the response's 'close'
 * event. `startedAt` is `process.hrtime.bigint()` and `time` the `Date`, both taken
 * when the request arrived.
 *
 * `bodyBytesSent` is 0 for HEAD, 1xx, 204 and 304 (Node sends no body), else the body
 * bytes the handler wrote (chunk framing not counted). `headerBytes` is the rest of what
 * the response put on the socket, so `$bytes_sent` is every byte sent, as in nginx.
 * `status` is 499 (nginx's "client closed request") when the connection closed before
 * the response head was sent. `remoteUser` is null; `remoteAddr` is the address the
 * request arrived from (empty, so `-`, if unknown), with IPv4-mapped IPv6 addresses
 * (`::ffff:1.2.3.4`) as plain IPv4.
 */
export function entryFromHttp(req: IncomingMessage, res: LoggedResponse, startedAt: bigint, time: Date): AccessLogEntry {
  const method = req.method ?? '';
  const status = res.headersSent || res.writableFinished ? res.statusCode : 499;
  let bodyBytesSent = 0;
  if (method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304 && status !== 499) bodyBytesSent = res.bodyBytes;
  let remoteAddr = res.clientAddress ?? req.socket.remoteAddress ?? '';
  if (remoteAddr.startsWith('::ffff:') && remoteAddr.includes('.')) remoteAddr = remoteAddr.slice(7);
  return {
    remoteAddr,
    remoteUser: null,
    time,
    method,
    url: res.requestUrl ?? req.url ?? '',
    httpVersion: req.httpVersion ?? '',
    status,
    bodyBytesSent,
    referer: headerValue(req.headers.referer),
    userAgent: headerValue(req.headers['user-agent']),
    durationMs: Number(process.hrtime.bigint() - startedAt) / 1e6,
    headerBytes: Math.max(0, res.wireBytes - bodyBytesSent)
  };
}

function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}
