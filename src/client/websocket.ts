/**
 * The WebSocket the client uses: the standard one (browsers, Node ≥ 22), or on Node 20
 * the `ws` package, loaded only when there is no global WebSocket so that the browser
 * path imports nothing of Node.
 */

/** The part of the standard WebSocket the client uses (the `ws` package has it too). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket class: `globalThis.WebSocket`, or `ws`'s default export. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

let loaded: Promise<WebSocketConstructor> | null = null;

/** The global WebSocket, else the `ws` package's (imported once, on first use). */
export function loadWebSocket(): Promise<WebSocketConstructor> {
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return Promise.resolve(global);
  // A computed specifier: bundlers leave it alone, so the browser bundle carries no `ws`.
  const name = 'ws';
  loaded ??= (import(name) as Promise<{ default?: WebSocketConstructor; WebSocket?: WebSocketConstructor }>).then((m) => {
    const WS = m.default ?? m.WebSocket;
    if (!WS) throw new Error('no global WebSocket and the ws package has none: pass options.WebSocket');
    return WS;
  }, () => {
    throw new Error('no global WebSocket (Node < 22?) and the ws package is not installed: npm install ws, or pass options.WebSocket');
  });
  return loaded;
}
