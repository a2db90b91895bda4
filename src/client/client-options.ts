/** The options, states and events of a client (client.ts). */
import type { BackoffOptions } from './backoff.js';
import type { ZenError } from './errors.js';
import type { ChannelEvent, Protocol } from './wire.js';
import type { WebSocketConstructor } from './websocket.js';

/** The client's connection state. */
export type ClientState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** Options of `connect`; all optional. */
export interface ConnectOptions {
  /** A fixed JWT (sent as `?access_token=`). Without it and `getToken` the session is anonymous. */
  token?: string;
  /**
   * Returns a fresh JWT: called before every connection attempt and before the current
   * token's `exp` (then sent in a `refresh` frame, so the session stays open).
   */
  getToken?: () => string | Promise<string>;
  /** `json` (default) or `bin` (MessagePack). */
  protocol?: Protocol;
  /** Returns the subscribe token of a `private.` channel for this session (from the application's backend). */
  signChannel?: (session: string, channel: string) => string | Promise<string>;
  /** The WebSocket class; default `globalThis.WebSocket`, else the `ws` package (Node 20). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff; defaults baseMs 500, capMs 30000, stableMs 10000. */
  backoff?: BackoffOptions;
  /** An attempt that is not `accepted` within this many ms is dropped and retried. Default 10000. */
  connectTimeoutMs?: number;
  /** Refresh the token this many ms before its `exp` (at most half its remaining life). Default 30000. */
  refreshBeforeMs?: number;
  /** Requests waiting for a connection, at most (beyond: rejected with code `queue full`). Default 1000. */
  maxQueued?: number;
}

/** A state change. */
export interface StateChange {
  state: ClientState;
  previous: ClientState;
  /** The close code and reason, when a connection ended. */
  code?: number;
  reason?: string;
}

/** The events of a client. */
export interface ClientEvents {
  state: StateChange;
  /** An event on `*` (every session), which no subscription receives. */
  message: ChannelEvent;
  /** Errors that belong to no request or subscription (refresh refused, `rate limited`, a bad frame). */
  error: ZenError;
}
