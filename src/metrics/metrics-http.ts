import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TokenVerifier } from '../auth/tokens.js';
import { requireGrant, type OnRefused } from '../http/guard.js';
import { replyError } from '../http/respond.js';
import { rawPath, type RouteHandler } from '../http/router.js';
import { ZenError } from '../errors.js';

/** A scrape's answer: the exposition text and its content type. */
export interface Scrape {
  contentType: string;
  body: string;
}

/** Produces a scrape (a node's own metrics, or an agent's across its workers). */
export type ScrapeSource = () => Promise<Scrape>;

function send(req: IncomingMessage, res: ServerResponse, scrape: Scrape): void {
  const bytes = Buffer.from(scrape.body);
  res.writeHead(200, { 'Content-Type': scrape.contentType, 'Content-Length': String(bytes.length), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

async function answer(req: IncomingMessage, res: ServerResponse, source: ScrapeSource): Promise<void> {
  let scrape: Scrape;
  try {
    scrape = await source();
  } catch (err) {
    const body = JSON.stringify({ error: `metrics unavailable: ${(err as Error).message}` });
    res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end(body);
    return;
  }
  send(req, res, scrape);
}

/**
 * `GET /metrics` on the main port: the Prometheus text format, for a bearer token with
 * the `admin` grant only (401 without a token, 403 without `admin`; refusals are told to
 * `onRefused`, as for `/agent/*`).
 */
export function metricsRoute(verifier: TokenVerifier, source: ScrapeSource, onRefused?: OnRefused): RouteHandler {
  return async (req, res, url) => {
    try {
      await requireGrant(req, url, verifier, 'admin', onRefused);
    } catch (err) {
      replyError(req, res, err instanceof ZenError ? err : new ZenError('ERR_HTTP_BAD_REQUEST', String(err)));
      return;
    }
    await answer(req, res, source);
  };
}

/** The `--metrics-port` listener. */
export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts the separate metrics listener (`--metrics-port` on `--metrics-host`): plain
 * HTTP, no authentication (for scrapers on a private network), `GET /metrics` only; any
 * other path is 404. Rejects (naming the option) when the port cannot be bound.
 */
export async function startMetricsListener(host: string, port: number, source: ScrapeSource): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    if (rawPath(req.url ?? '/') !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'application/json' }).end('{"error":"method not allowed"}');
      return;
    }
    void answer(req, res, source);
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => reject(new Error(`--metrics-port ${port} on ${host}: ${err.message}`));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })
  };
}
