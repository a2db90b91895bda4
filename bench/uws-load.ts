/**
 * Loads uWebSockets.js for the bench's reference row, or says why it cannot.
 *
 * The package (`@trufflesuite/uws-js-unofficial`, an exact-pinned devDependency) ships
 * prebuilt binaries for a few Node ABIs only (Node 16, 18 and 20: ABI 93, 108, 115).
 * Its own entry point falls back to a JavaScript emulation on `ws` when the binary does
 * not load, which would make the row measure `ws` under another name; so the binary is
 * required here directly, and where there is none the row is skipped with the reason.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The npm package the binaries come from. */
export const UWS_PACKAGE = '@trufflesuite/uws-js-unofficial';

/** The part of a uWS WebSocket the reference server uses (the package's docs/index.d.ts has the rest). */
export interface UwsWebSocket<U> {
  send(message: string | Uint8Array, isBinary?: boolean): number;
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  isSubscribed(topic: string): boolean;
  /** To every subscriber of `topic` but this socket. */
  publish(topic: string, message: string | Uint8Array, isBinary?: boolean): boolean;
  getUserData(): U;
}

/** The handlers and settings of one `app.ws` route. */
export interface UwsBehavior<U> {
  maxPayloadLength?: number;
  idleTimeout?: number;
  maxBackpressure?: number;
  sendPingsAutomatically?: boolean;
  open?(ws: UwsWebSocket<U>): void;
  /** `message` is valid during the call only. */
  message?(ws: UwsWebSocket<U>, message: ArrayBuffer, isBinary: boolean): void;
  close?(ws: UwsWebSocket<U>, code: number, message: ArrayBuffer): void;
}

/** An opaque listen socket. */
export type UwsListenSocket = object;

export interface UwsApp {
  ws<U>(pattern: string, behavior: UwsBehavior<U>): UwsApp;
  listen(host: string, port: number, cb: (socket: UwsListenSocket | false) => void): UwsApp;
  /** To every subscriber of `topic`. */
  publish(topic: string, message: string | Uint8Array, isBinary?: boolean): boolean;
  numSubscribers(topic: string): number;
}

export interface Uws {
  App(): UwsApp;
  us_socket_local_port(socket: UwsListenSocket): number;
}

export type UwsLoad = { uws: Uws; file: string } | { reason: string };

/**
 * The uWS binary for this platform and `abi` (default: this Node's), or the reason there
 * is none. Never the package's `ws` fallback.
 */
export function loadUws(abi: string = process.versions.modules): UwsLoad {
  const require = createRequire(import.meta.url);
  let root: string;
  try {
    root = dirname(require.resolve(`${UWS_PACKAGE}/package.json`));
  } catch {
    return { reason: `${UWS_PACKAGE} is not installed (it is an optional devDependency)` };
  }
  const file = join(root, 'binaries', `uws_${process.platform}_${process.arch}_${abi}.node`);
  try {
    return { uws: require(file) as Uws, file };
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND';
    const why = missing ? 'it ships binaries for Node 16, 18 and 20 only' : (err as Error).message.split('\n')[0];
    return { reason: `uWebSockets.js does not load on Node ${process.version} (${process.platform}-${process.arch}, ABI ${abi}): ${why}` };
  }
}
