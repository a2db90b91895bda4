import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';

/**
 * The socket engine seam. zenconn's protocol, channel and session code talk only to
 * these types; `ws-transport.ts` implements them on `ws`, and a uWebSockets.js engine
 * can implement them without touching the rest.
 *
 * Contract:
 * - `prepare` frames a payload once; the same `PreparedFrame` may be sent to any
 *   number of connections (encode once, write the same bytes to every recipient).
 * - `send` never throws on a closing socket; it is a no-op once closed.
 * - `cork`/`uncork` coalesce the writes of one event-loop turn into one syscall.
 * - `bufferedAmount` is the bytes accepted by `send` and not yet handed to the kernel;
 *   the session layer enforces its cap (1013 for a slow consumer).
 * - Handler callbacks fire at most once for `onClose`, after which nothing else fires.
 */

/** An opaque, ready-to-write frame. */
export interface PreparedFrame {
  /** Payload length in bytes (what counts as bytes_out). */
  readonly length: number;
}

/** What the session layer receives from a connection. */
export interface ConnectionHandler {
  onMessage(data: Buffer, isBinary: boolean): void;
  /** Any inbound traffic at all, pongs included (resets the idle timer). */
  onActivity(): void;
  onClose(code: number): void;
}

/** One accepted WebSocket. */
export interface Connection {
  readonly remoteAddress: string;
  readonly bufferedAmount: number;
  send(frame: PreparedFrame): void;
  cork(): void;
  uncork(): void;
  ping(): void;
  /** Close handshake with a code (1000–4999) and a short reason. */
  close(code: number, reason?: string): void;
  /** Destroy the socket at once (no close handshake). */
  terminate(): void;
  /** Install the handler; called once, right after accept. */
  setHandler(handler: ConnectionHandler): void;
}

/** The answer to an upgrade request: accept with a context, or refuse with an HTTP status. */
export type UpgradeDecision<T> =
  | { accept: true; context: T; protocol?: string }
  | { accept: false; status: number; body: string; headers?: Record<string, string> };

export interface TransportOptions<T> {
  /** The path WebSocket upgrades are accepted on (default `/`). */
  path: string;
  /** Largest inbound frame; larger closes with 1009. */
  maxPayloadBytes: number;
  /** Decide whether to accept an upgrade (auth, origin, protocol choice). */
  decide(req: IncomingMessage): Promise<UpgradeDecision<T>> | UpgradeDecision<T>;
  /** A connection was accepted. */
  onConnection(conn: Connection, req: IncomingMessage, context: T): void;
  /** An upgrade was refused or failed (for the access log and the audit trail); `body` is the JSON sent with the status. */
  onRefused?(req: IncomingMessage, status: number, body: string): void;
}

export interface Transport {
  prepare(payload: Buffer, binary: boolean): PreparedFrame;
  /** Start taking upgrades on this HTTP(S) server. */
  attach<T>(server: HttpServer | HttpsServer, options: TransportOptions<T>): void;
  /** Stop taking upgrades (existing connections stay). */
  detach(): void;
}

/**
 * A socket's error listener until its owner takes it over: drop the connection. One shared
 * function rather than a closure per socket (a closure would keep its scope alive as long
 * as the socket, #15).
 */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}
