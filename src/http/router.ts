import type { IncomingMessage, ServerResponse } from 'node:http';

/** A route handler; may be async (errors are answered 500 by the server). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/**
 * Exact-path routes by method. Tiny on purpose: zenconn has a handful of API endpoints;
 * a path without routes goes to the request handler's fallback (the static files).
 *
 * A route matches only its exact raw path (the request target before `?`), never a
 * URL-resolved form of it: `//x/agent/workers`, `/x/../agent/workers` or
 * `/./agent/workers` are not `/agent/workers`, so a proxy rule on the path cannot be
 * walked around.
 */
export class Router {
  private readonly routes = new Map<string, Map<string, RouteHandler>>();

  /** Registers `handler` for `method` on `path`; returns its remover. */
  add(method: string, path: string, handler: RouteHandler): () => void {
    let byMethod = this.routes.get(path);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.routes.set(path, byMethod);
    }
    byMethod.set(method, handler);
    if (method === 'GET') byMethod.set('HEAD', handler);
    return () => {
      byMethod.delete(method);
      if (method === 'GET') byMethod.delete('HEAD');
    };
  }

  /**
   * The handler for a request's raw path (see {@link rawPath}): 405 for a known path with
   * another method; null for a path without routes.
   */
  match(method: string, path: string): RouteHandler | null {
    const byMethod = this.routes.get(path);
    if (byMethod === undefined) return null;
    const h = byMethod.get(method);
    if (h) return h;
    const allow = [...byMethod.keys()].join(', ');
    return (_req, res) => {
      res.writeHead(405, { Allow: allow, 'Content-Type': 'application/json' });
      res.end('{"error":"method not allowed"}');
    };
  }
}

/** The path part of a raw request target, as sent: everything before the first `?`. */
export function rawPath(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}
