import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { ZenError } from '../errors.js';
import type { LoggedResponse } from './logged-response.js';
import type { RequestLog } from './request-log.js';
import { reply } from './respond.js';
import { rawPath, type RouteHandler, type Router } from './router.js';

/** Options of {@link createRequestHandler}. */
export interface RequestHandlerOptions {
  router: Router;
  /** Answers a path no route has (the static files). */
  fallback: RouteHandler;
  requestLog: RequestLog;
  /** Told of a handler that threw. */
  logger: Logger;
  /** An answer that replaces the route (a flood limit), then the connection closes; null to serve. */
  refuse?: (req: IncomingMessage) => { status: number; body: string; headers: Record<string, string> } | null;
}

/**
 * The server's request listener: logs the response, answers a refusal (`refuse`), 400 to a
 * target that is no URL, and runs the route of the exact raw path (or the fallback). A handler that throws or rejects is
 * answered with its ZenError's status, else 500, or the connection is cut if the head
 * was already sent.
 */
export function createRequestHandler(o: RequestHandlerOptions): (req: IncomingMessage, res: LoggedResponse) => void {
  return (req, res) => {
    o.requestLog.response(req, res);
    const refusal = o.refuse?.(req) ?? null;
    if (refusal !== null) {
      res.shouldKeepAlive = false;
      res.writeHead(refusal.status, { ...refusal.headers, 'Content-Type': 'application/json', Connection: 'close' }).end(refusal.body);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      res.writeHead(400).end();
      return;
    }
    // Routes match the raw path: the URL form resolves `//host`, `\\`, `.` and `..`.
    const route = o.router.match(req.method ?? 'GET', rawPath(req.url ?? '/')) ?? o.fallback;
    Promise.resolve()
      .then(() => route(req, res, url))
      .catch((err: unknown) => {
        o.logger.error({ err }, 'request handler failed');
        if (!res.headersSent) reply(req, res, err instanceof ZenError ? err.status : 500, { error: err instanceof ZenError ? err.message : 'internal error' });
        else res.destroy();
      });
  };
}
