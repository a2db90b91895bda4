/**
 * The zenconn client: one WebSocket at a time, reconnected with full-jitter backoff;
 * every subscription resubscribed with `since` its last position so that nothing sent
 * meanwhile is lost (docs/client.md). Requests (broadcast, history, presence) are queued
 * while there is no connection and answered through promises.
 */
import { backoffDelay, BACKOFF_DEFAULTS, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { Subscription, type HistoryOptions, type HistoryResult, type PresenceResult, type SubscriptionHost } from './subscription.js';
import { decodeFrame, encodeFrame, type ChannelEvent, type InFrame, type OutFrame, type Position, type Protocol } from './wire.js';
import { loadWebSocket, type WebSocketConstructor, type WebSocketLike } from './websocket.js';

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
  /** An event on a channel without a subscription (e.g. `*`). */
  message: ChannelEvent;
  /** Errors that belong to no request or subscription (refresh refused, `rate limited`, a bad frame). */
  error: ZenError;
}

/** Why a request failed: `disconnected` (the connection dropped before the answer; it may or may not have been applied), `closed`, `queue full`, or `server` (an `error` frame; see `reasons`). */
export class ZenError extends Error {
  constructor(
    readonly code: 'disconnected' | 'closed' | 'queue full' | 'server' | 'token' | 'frame',
    message: string,
    readonly reasons: string[] = []
  ) {
    super(message);
    this.name = 'ZenError';
  }
}

type RequestKind = 'broadcast' | 'history' | 'presence';
interface Request {
  kind: RequestKind;
  channel: string;
  resolve(value: never): void;
  reject(err: ZenError): void;
}
interface QueueItem {
  frame: OutFrame | PromiseLike<OutFrame>;
  request?: Request;
  /** A (re)subscribe or unsubscribe: rebuilt from the subscriptions after a reconnect, not kept. */
  membership?: boolean;
  /** For a subscribe: the subscription and the since it asks for. */
  sub?: Subscription;
}

/** The refresh reasons of docs/protocol.md: an `error` on `*` about the token. */
const REFRESH_REASONS = ['token expired', 'token rejected', 'token for another user', 'anonymous session'];

/** Connects to a zenconn server (`ws://host:port/` or `wss://…`) and returns the client at once, `connecting`. */
export function connect(url: string, options: ConnectOptions = {}): ZenClient {
  return new ZenClient(url, options);
}

/** A zenconn client; see `connect`. */
export class ZenClient extends Emitter<ClientEvents> implements SubscriptionHost {
  state: ClientState = 'connecting';
  /** The current session id (from `accepted`), or null while not connected. */
  session: string | null = null;
  /** Reconnects so far (connections after the first). */
  reconnects = 0;
  readonly protocol: Protocol;
  private ws: WebSocketLike | null = null;
  private attempt = 0;
  private everConnected = false;
  private readonly subs = new Map<string, Subscription>();
  /** The since each pending subscribe asked for, by channel. */
  private readonly subscribing = new Map<string, Position | undefined>();
  private queue: QueueItem[] = [];
  private inflight: Request[] = [];
  private pumping = false;
  private token: string | undefined;
  /** Refreshes sent and not yet answered, in order (answers come in order). */
  private refreshes: Array<{ resolve(exp: number | null): void; reject(err: ZenError): void }> = [];
  private timers: { retry?: Timer; connect?: Timer; stable?: Timer; refresh?: Timer } = {};
  private readonly removeOnline: (() => void) | null;

  constructor(
    private readonly url: string,
    private readonly options: ConnectOptions
  ) {
    super();
    this.protocol = options.protocol ?? 'json';
    this.token = options.token;
    const g = globalThis as BrowserGlobal;
    if (typeof g.addEventListener === 'function' && typeof g.removeEventListener === 'function') {
      // A browser that goes offline: its open socket is dead or soon will be (Chromium
      // does not close it by itself), and no attempt can succeed until it is back online;
      // then try at once rather than at the end of the backoff.
      const offline = (): void => {
        if (this.ws) this.drop(this.ws, 1006, 'offline');
      };
      const online = (): void => {
        if (this.state === 'disconnected') void this.open();
      };
      g.addEventListener('offline', offline);
      g.addEventListener('online', online);
      this.removeOnline = () => {
        g.removeEventListener!('offline', offline);
        g.removeEventListener!('online', online);
      };
    } else this.removeOnline = null;
    void this.open();
  }

  /** Resolves once the client is connected (at once if it is); rejects if it is closed. */
  ready(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on('state', ({ state }) => {
        if (state === 'connected') resolve();
        else if (state === 'closed') reject(new ZenError('closed', 'client closed'));
        else return;
        off();
      });
    });
  }

  /**
   * Subscribes to `channel` (or returns the existing subscription); `handler`, when
   * given, listens to its events. The subscription lasts until `unsubscribe()` or `close()`,
   * across reconnects.
   */
  subscribe(channel: string, handler?: (event: ChannelEvent) => void): Subscription {
    if (this.state === 'closed') throw new ZenError('closed', 'client closed');
    let sub = this.subs.get(channel);
    if (!sub) {
      sub = new Subscription(channel, this);
      this.subs.set(channel, sub);
      if (this.state === 'connected') {
        this.queue.push(this.subscribeItem(sub));
        void this.pump();
      }
    }
    if (handler) sub.on('event', handler);
    return sub;
  }

  /** Sends `data` to every other subscriber of `channel`; resolves with how many sessions it was sent to. */
  broadcast(channel: string, data: unknown): Promise<{ count: number }> {
    return this.enqueue('broadcast', channel, { type: 'broadcast', channel, data: data === undefined ? null : data });
  }

  /** The past events of `channel` (no subscription needed; the same permission as subscribing). */
  history(channel: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    return this.request('history', channel, options);
  }

  /** Who is in `channel`, on every worker and node (members of the channel, or the `admin` grant). */
  presence(channel: string): Promise<PresenceResult> {
    return this.request('presence', channel);
  }

  /** @internal SubscriptionHost: history and presence requests. */
  request(kind: 'history', channel: string, options: HistoryOptions): Promise<HistoryResult>;
  request(kind: 'presence', channel: string): Promise<PresenceResult>;
  request(kind: 'history' | 'presence', channel: string, options: HistoryOptions = {}): Promise<HistoryResult | PresenceResult> {
    const frame: OutFrame = kind === 'presence' ? { type: 'presence', channel } : { type: 'history', channel, ...options };
    return this.enqueue(kind, channel, frame);
  }

  /** @internal SubscriptionHost: a subscription leaves. */
  unsubscribe(sub: Subscription): void {
    if (this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    if (this.state === 'connected') {
      this.queue.push({ frame: { type: 'unsubscribe', channel: sub.channel }, membership: true });
      void this.pump();
    }
  }

  /** The subscription of `channel`, if any. */
  getSubscription(channel: string): Subscription | undefined {
    return this.subs.get(channel);
  }

  /** Closes the connection for good: no reconnect; pending requests are rejected with code `closed`. */
  close(): void {
    this.shutdown();
  }

  private shutdown(code?: number, reason?: string): void {
    if (this.state === 'closed') return;
    const ws = this.ws;
    this.ws = null;
    this.clearTimers();
    this.removeOnline?.();
    if (ws) {
      detach(ws);
      ws.close(1000);
    }
    this.failAll(new ZenError('closed', 'client closed'), true);
    this.setState('closed', code, reason);
    for (const sub of this.subs.values()) sub.unsubscribe();
  }

  // --- connection ---------------------------------------------------------

  private async open(): Promise<void> {
    clearTimeout(this.timers.retry);
    if ((globalThis as BrowserGlobal).navigator?.onLine === false) {
      this.retry();
      return;
    }
    this.setState('connecting');
    let WS: WebSocketConstructor;
    try {
      WS = this.options.WebSocket ?? (await loadWebSocket());
      if (this.options.getToken) this.token = await this.options.getToken();
    } catch (err) {
      this.emit('error', new ZenError('token', `cannot connect: ${(err as Error).message}`));
      if (this.state === 'connecting') this.retry();
      return;
    }
    if (this.state !== 'connecting') return;
    const q = new URL(this.url);
    q.searchParams.set('protocol', this.protocol);
    if (this.token) q.searchParams.set('access_token', this.token);
    const ws = new WS(q.toString());
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    this.timers.connect = setTimeout(() => this.drop(ws, 1006, 'connect timeout'), this.options.connectTimeoutMs ?? 10_000);
    ws.onmessage = (e) => this.ws === ws && this.onFrame(e.data);
    ws.onclose = (e) => this.ws === ws && this.onClose(e.code, e.reason);
    ws.onerror = () => undefined; // a close follows
  }

  /** Ends a connection that is not working and handles it as closed. */
  private drop(ws: WebSocketLike, code: number, reason: string): void {
    if (this.ws !== ws) return;
    detach(ws);
    try {
      ws.close();
    } catch {
      // already closing
    }
    this.onClose(code, reason);
  }

  private onClose(code: number, reason: string): void {
    this.ws = null;
    this.session = null;
    this.clearTimers();
    this.failAll(new ZenError('disconnected', `connection lost (${code})`), false);
    for (const sub of this.subs.values()) sub.markLost();
    this.subscribing.clear();
    if (code === 4001 && !this.options.getToken) {
      // The token expired and there is no way to get another: reconnecting would be refused.
      this.emit('error', new ZenError('token', 'token expired and no getToken to renew it'));
      this.shutdown(code, reason);
      return;
    }
    this.setState('disconnected', code, reason);
    this.retry();
  }

  private retry(): void {
    this.setState('disconnected');
    // Offline (a browser that says so): the `online` event starts the next attempt.
    if ((globalThis as BrowserGlobal).navigator?.onLine === false) return;
    const delay = backoffDelay(this.attempt++, this.options.backoff);
    this.timers.retry = setTimeout(() => void this.open(), delay);
  }

  private onAccepted(session: string): void {
    clearTimeout(this.timers.connect);
    this.session = session;
    if (this.everConnected) this.reconnects++;
    this.everConnected = true;
    this.timers.stable = setTimeout(() => (this.attempt = 0), this.options.backoff?.stableMs ?? BACKOFF_DEFAULTS.stableMs);
    this.scheduleRefresh(this.token ? jwtExp(this.token) : null);
    // Memberships first, then what waited for the connection, in order.
    this.queue = this.queue.filter((i) => !i.membership);
    this.queue.unshift(...[...this.subs.values()].map((s) => this.subscribeItem(s)));
    this.setState('connected');
    void this.pump();
  }

  private subscribeItem(sub: Subscription): QueueItem {
    const since = sub.sinceForResubscribe();
    const base = (token?: string): OutFrame => {
      const f: OutFrame = { type: 'subscribe', channel: sub.channel };
      if (token !== undefined) f.token = token;
      if (since) f.since = since;
      return f;
    };
    const sign = this.options.signChannel;
    const session = this.session;
    const frame = sub.channel.startsWith('private.') && sign && session ? Promise.resolve(sign(session, sub.channel)).then(base) : base();
    return { frame, membership: true, sub };
  }

  /** Sends queued frames in order while connected; waits on a frame still being built (a channel signature). */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.state === 'connected' && this.ws && this.queue.length > 0) {
        const item = this.queue[0]!;
        if (isPromiseLike(item.frame)) {
          try {
            item.frame = await item.frame;
          } catch (err) {
            if (this.queue[0] === item) this.queue.shift();
            item.sub?.deliver('error', { errors: [`signChannel failed: ${(err as Error).message}`] });
            continue;
          }
          continue; // the state may have changed meanwhile: look again
        }
        this.queue.shift();
        const frame = item.frame;
        if (frame.type === 'subscribe') this.subscribing.set(frame.channel, frame.since);
        if (item.request) this.inflight.push(item.request);
        this.ws.send(encodeFrame(this.protocol, frame));
      }
    } finally {
      this.pumping = false;
    }
  }

  private enqueue<T>(kind: RequestKind, channel: string, frame: OutFrame): Promise<T> {
    if (this.state === 'closed') return Promise.reject(new ZenError('closed', 'client closed'));
    if (this.state !== 'connected' && this.queue.length >= (this.options.maxQueued ?? 1000)) {
      return Promise.reject(new ZenError('queue full', 'too many requests waiting for a connection'));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ frame, request: { kind, channel, resolve: resolve as (v: never) => void, reject } });
      void this.pump();
    });
  }

  /** Rejects requests sent and unanswered (they may or may not have been applied); with `queued`, those not sent too. */
  private failAll(err: ZenError, queued: boolean): void {
    for (const r of this.refreshes.splice(0)) r.reject(err);
    const requests = this.inflight;
    this.inflight = [];
    if (queued) {
      for (const i of this.queue) if (i.request) requests.push(i.request);
      this.queue = [];
    }
    for (const r of requests) r.reject(err);
  }

  /** Takes the oldest request in flight that matches. */
  private take(match: (r: Request) => boolean): Request | undefined {
    const i = this.inflight.findIndex(match);
    return i === -1 ? undefined : this.inflight.splice(i, 1)[0];
  }

  // --- frames --------------------------------------------------------------

  private onFrame(data: unknown): void {
    let f: InFrame;
    try {
      f = decodeFrame(data);
    } catch (err) {
      this.emit('error', new ZenError('frame', `malformed frame from the server: ${(err as Error).message}`));
      return;
    }
    switch (f.type) {
      case 'accepted':
        return this.onAccepted(f.session);
      case 'subscribed': {
        const sub = this.subs.get(f.channel);
        const since = this.subscribing.get(f.channel);
        this.subscribing.delete(f.channel);
        sub?.handleSubscribed(f, since);
        return;
      }
      case 'event': {
        const { type: _type, ...event } = f;
        const sub = this.subs.get(f.channel);
        if (sub) sub.handleEvent(event);
        else this.emit('message', event);
        return;
      }
      case 'received':
        this.take((r) => r.kind === 'broadcast' && r.channel === f.channel)?.resolve({ count: f.count } as never);
        return;
      case 'history': {
        const { type: _type, channel: _channel, ...result } = f;
        this.take((r) => r.kind === 'history' && r.channel === f.channel)?.resolve(result as never);
        return;
      }
      case 'presence':
        this.take((r) => r.kind === 'presence' && r.channel === f.channel)?.resolve({ members: f.members, truncated: f.truncated } as never);
        return;
      case 'joined':
      case 'left':
        this.subs.get(f.channel)?.deliver(f.type, f.member);
        return;
      case 'unauthorized':
        return this.onRefused(f.channel, ['unauthorized'], true);
      case 'error':
        return this.onError(f.channel, f.errors);
      case 'refreshed':
        this.scheduleRefresh(f.exp);
        this.refreshes.shift()?.resolve(f.exp);
        return;
    }
  }

  /** An `error` frame: a refresh's, a subscribe's, a request's, or nobody's. */
  private onError(channel: string, errors: string[]): void {
    if (channel === '*' && this.refreshes.length > 0 && errors.some((e) => REFRESH_REASONS.includes(e))) {
      this.refreshes.shift()!.reject(new ZenError('token', `token refresh refused: ${errors.join(', ')}`, errors));
      return;
    }
    if (channel === '*' && errors.includes('rate limited')) {
      // The frame the server dropped is most likely the newest one sent.
      const r = this.inflight.pop();
      const err = new ZenError('server', 'rate limited', errors);
      if (r) r.reject(err);
      else this.emit('error', err);
      return;
    }
    this.onRefused(channel, errors, false);
  }

  /**
   * A refusal about `channel`: a pending subscribe's first (it was sent before any
   * request that could follow it), else the oldest request in flight on the channel.
   */
  private onRefused(channel: string, errors: string[], unauthorized: boolean): void {
    const sub = this.subs.get(channel);
    if (sub && this.subscribing.has(channel)) {
      this.subscribing.delete(channel);
      if (unauthorized) sub.deliver('unauthorized', { channel });
      else sub.deliver('error', { errors });
      return;
    }
    const r = this.take((x) => x.channel === channel);
    if (r) {
      r.reject(new ZenError('server', errors.join(', '), errors));
      return;
    }
    if (sub) sub.deliver('error', { errors });
    else this.emit('error', new ZenError('server', `${channel}: ${errors.join(', ')}`, errors));
  }

  // --- token refresh ---------------------------------------------------------

  private scheduleRefresh(exp: number | null): void {
    clearTimeout(this.timers.refresh);
    if (exp === null || !this.options.getToken) return;
    const left = exp * 1000 - Date.now();
    const before = Math.min(this.options.refreshBeforeMs ?? 30_000, left / 2);
    this.timers.refresh = setTimeout(() => void this.refresh(), Math.max(0, left - before));
  }

  /** The scheduled refresh: a token from getToken, sent as `refresh`; a failure is an `error` event (the next reconnect gets a token anew). */
  private async refresh(): Promise<void> {
    const ws = this.ws;
    try {
      const token = await this.options.getToken!();
      if (this.ws !== ws || this.state !== 'connected') return;
      await this.refreshToken(token);
    } catch (err) {
      this.emit('error', err instanceof ZenError ? err : new ZenError('token', `getToken failed: ${(err as Error).message}`));
    }
  }

  /**
   * Sends `token` (a JWT of the same user) as the session's new token now, and uses it
   * for later reconnects; resolves with its `exp` (null: none) once the server took it.
   * With `getToken` this happens by itself before every `exp`.
   */
  refreshToken(token: string): Promise<number | null> {
    const ws = this.ws;
    if (this.state !== 'connected' || !ws) return Promise.reject(new ZenError('disconnected', 'not connected'));
    return new Promise((resolve, reject) => {
      const accepted = (exp: number | null): void => {
        this.token = token;
        resolve(exp);
      };
      this.refreshes.push({ resolve: accepted, reject });
      ws.send(encodeFrame(this.protocol, { type: 'refresh', token }));
    });
  }

  // --- helpers -------------------------------------------------------------

  private setState(state: ClientState, code?: number, reason?: string): void {
    if (state === this.state) return;
    const change: StateChange = { state, previous: this.state };
    if (code !== undefined) change.code = code;
    if (reason !== undefined) change.reason = reason;
    this.state = state;
    this.emit('state', change);
  }

  private clearTimers(): void {
    for (const t of Object.values(this.timers)) clearTimeout(t);
    this.timers = {};
  }
}

type Timer = ReturnType<typeof setTimeout>;
/** What the client uses of a browser's global scope, when there is one. */
interface BrowserGlobal {
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
  navigator?: { onLine?: boolean };
}

function detach(ws: WebSocketLike): void {
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = () => undefined;
}

function isPromiseLike<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof (v as { then?: unknown }).then === 'function';
}

/** The `exp` claim of a JWT (seconds), or null when it has none or is not a JWT. */
export function jwtExp(token: string): number | null {
  try {
    const part = token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4))) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp : null;
  } catch {
    return null;
  }
}
