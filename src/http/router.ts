import type { IncomingMessage, ServerResponse } from 'node:http';

/** A route handler; may be async (errors are answered 500 by the server). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/**
 * Exact-path routes by method. Tiny on purpose: zenconn has a handful of API endpoints;
 * a path without routes goes to the request handler's fallback (the static files).
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

  /** The handler for a request: 405 for a known path with another method; null for a path without routes. */
  match(method: string, url: URL): RouteHandler | null {
    const byMethod = this.routes.get(url.pathname);
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
