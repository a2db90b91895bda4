import type { IncomingMessage, ServerResponse } from 'node:http';
import { packValue } from '../protocol/msgpack-encoder.js';
import { unpackValue } from '../protocol/msgpack-reader.js';
import { ZenError } from '../errors.js';
import { DecodeReason, MAX_DATA_DEPTH } from '../protocol/frames.js';

/** Whether the client asked for MessagePack answers (`X-Bin-Protocol`). */
export function wantsBinary(req: IncomingMessage): boolean {
  return req.headers['x-bin-protocol'] !== undefined;
}

/** Answers with a JSON body, or plain MessagePack (the protocol's encoder) when the request carries X-Bin-Protocol. */
export function reply(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const bin = wantsBinary(req);
  const bytes = bin ? packValue(body) : Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    ...headers,
    'Content-Type': bin ? 'application/msgpack' : 'application/json; charset=utf-8',
    'Content-Length': String(bytes.length),
    'Cache-Control': 'no-store'
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

/** Answers a ZenError with its status and `{error, code}`. */
export function replyError(req: IncomingMessage, res: ServerResponse, err: ZenError): void {
  const headers: Record<string, string> = err.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
  reply(req, res, err.status, { error: err.message, code: err.code }, headers);
}

/** Reads a request body up to `limit` bytes (413 beyond it). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      reject(new ZenError('ERR_HTTP_BODY_TOO_LARGE', limit));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new ZenError('ERR_HTTP_BODY_TOO_LARGE', limit));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A parsed request body, and whether it holds binary values (MessagePack `bin`). */
export interface ParsedBody {
  value: unknown;
  hasBinary: boolean;
}

/**
 * Parses a JSON or MessagePack (`Content-Type: application/msgpack`) body. MessagePack
 * goes through the protocol's strict reader: plain values only, no msgpackr extensions,
 * nesting bounded while reading (the body object is one level above its `data`, so
 * `data` may be MAX_DATA_DEPTH deep; the caller validates `data` itself). JSON.parse is
 * iterative: any nesting parses, and the caller's validation refuses it.
 */
export function parseBody(req: IncomingMessage, body: Buffer): ParsedBody {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/msgpack' || type === 'application/x-msgpack') {
    const r = unpackValue(body, MAX_DATA_DEPTH + 1);
    if (!r.ok && r.reason === DecodeReason.DATA_TOO_DEEP) throw new ZenError('ERR_HTTP_DATA_TOO_DEEP', MAX_DATA_DEPTH);
    if (!r.ok) throw new ZenError('ERR_HTTP_BAD_REQUEST', `invalid MessagePack body: ${r.reason}`);
    return { value: r.value, hasBinary: r.hasBinary };
  }
  try {
    return { value: JSON.parse(body.toString('utf8')), hasBinary: false };
  } catch {
    throw new ZenError('ERR_HTTP_BAD_REQUEST', 'invalid JSON body');
  }
}
