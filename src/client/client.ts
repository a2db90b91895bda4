/**
 * The zenconn client: one WebSocket at a time, reconnected with full-jitter backoff;
 * every subscription resubscribed with `since` its last position so that nothing sent
 * meanwhile is lost (docs/client.md). Requests (broadcast, history, presence) are queued
 * while there is no connection and answered through promises (outbox.ts; answers.ts
 * matches each answer to its request); the token is kept fresh by token-refresher.ts.
 */
import { backoffDelay, BACKOFF_DEFAULTS } from './backoff.js';
import type { ClientEvents, ClientState, ConnectOptions, StateChange } from './client-options.js';
import { Emitter } from './emitter.js';
import { ZenError } from './errors.js';
import { Answers } from './answers.js';
import { Outbox, type QueueItem, type RequestKind } from './outbox.js';
import { Subscription, type HistoryOptions, type HistoryResult, type PresenceResult, type SubscriptionHost } from './subscription.js';
import { TokenRefresher } from './token-refresher.js';
import { decodeFrame, encodeFrame, type ChannelEvent, type InFrame, type OutFrame, type Position, type Protocol } from './wire.js';
import { loadWebSocket, type WebSocketConstructor, type WebSocketLike } from './websocket.js';

export type { ClientEvents, ClientState, ConnectOptions, StateChange } from './client-options.js';

/**
 * Connects to a zenconn server (`ws://host:port/`, `wss://…`; `http(s)://` works too, and
 * in a page a relative URL such as `/`) and returns the client at once, `connecting`.
 */
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
  private readonly url: URL;
  private ws: WebSocketLike | null = null;
  private attempt = 0;
  private everConnected = false;
  private readonly subs = new Map<string, Subscription>();
  /** The since each subscribe sent and not yet answered asked for, by channel. */
  private readonly subscribing = new Map<string, Position | undefined>();
  private readonly outbox: Outbox;
  private readonly tokens: TokenRefresher;
  /** Which request or subscribe an answer or refusal belongs to (answers.ts). */
  private readonly answers: Answers;
  private timers: { retry?: Timer; connect?: Timer; stable?: Timer } = {};
  private readonly removeBrowserListeners: (() => void) | null;
  /** This client's session ids, newest last (at most OWN_SESSIONS_KEPT): a replay's events from them are its own. */
  private readonly ownSessions: string[] = [];

  /** Throws a TypeError when `url` is not a ws:, wss:, http: or https: URL (in a page: relative to it). */
  constructor(
    url: string,
    private readonly options: ConnectOptions
  ) {
    super();
    // In a page, a relative URL ('/') names the page's own server; http(s) becomes ws(s).
    this.url = new URL(url, (globalThis as BrowserGlobal).location?.href);
    if (this.url.protocol === 'http:' || this.url.protocol === 'https:') this.url.protocol = this.url.protocol === 'http:' ? 'ws:' : 'wss:';
    if (this.url.protocol !== 'ws:' && this.url.protocol !== 'wss:') throw new TypeError(`zenconn: not a ws://, wss:// or http(s):// URL: ${url}`);
    this.protocol = options.protocol ?? 'json';
    this.outbox = new Outbox(
      {
        canSend: () => this.state === 'connected' && this.ws !== null,
        send: (frame) => this.send(frame)
      },
      options.maxQueued ?? 1000
    );
    this.tokens = new TokenRefresher(
      {
        sendRefresh: (token) => this.state === 'connected' && this.send({ type: 'refresh', token }),
        onFailure: (err) => this.emit('error', err)
      },
      options.token,
      options.getToken,
      options.refreshBeforeMs ?? 30_000
    );
    this.answers = new Answers({ subs: this.subs, subscribing: this.subscribing, outbox: this.outbox, tokens: this.tokens, emitError: (err) => this.emit('error', err) });
    this.removeBrowserListeners = this.listenToBrowser();
    void this.open();
  }

  /** Resolves once the client is connected (at once if it is); rejects if it is closed. */
  ready(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new ZenError('closed', 'client closed'));
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
      // Not connected: the next session subscribes every channel anyway.
      if (this.state === 'connected') this.outbox.push(this.subscribeItem(sub));
    }
    if (handler) sub.on('event', handler);
    return sub;
  }

  /** Sends `data` to every other subscriber of `channel`; resolves with how many sessions it was sent to. */
  broadcast(channel: string, data: unknown): Promise<{ count: number }> {
    return this.request('broadcast', channel, { type: 'broadcast', channel, data: data === undefined ? null : data });
  }

  /** The past events of `channel` (no subscription needed; the same permission as subscribing). */
  history(channel: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    return this.request('history', channel, { type: 'history', channel, ...options });
  }

  /** Who is in `channel`, on every worker and node (members of the channel, or the `admin` grant). */
  presence(channel: string): Promise<PresenceResult> {
    return this.request('presence', channel, { type: 'presence', channel });
  }

  /**
   * Sends `token` (a JWT of the same user) as the session's new token now, and uses it
   * for later reconnects; resolves with its `exp` (null: none) once the server took it.
   * With `getToken` this happens by itself before every `exp`.
   */
  refreshToken(token: string): Promise<number | null> {
    return this.tokens.refresh(token);
  }

  /** The subscription of `channel`, if any. */
  getSubscription(channel: string): Subscription | undefined {
    return this.subs.get(channel);
  }

  /** @internal SubscriptionHost: a subscription leaves. */
  unsubscribe(sub: Subscription): void {
    if (this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    if (this.state === 'connected') this.outbox.push({ frame: { type: 'unsubscribe', channel: sub.channel }, membership: true });
  }

  /** Closes the connection for good: no reconnect; pending requests are rejected with code `closed`. */
  close(): void {
    this.shutdown();
  }

  // --- connection ---------------------------------------------------------

  private request<T>(kind: RequestKind, channel: string, frame: OutFrame): Promise<T> {
    if (this.state === 'closed') return Promise.reject(new ZenError('closed', 'client closed'));
    return this.outbox.request<T>(kind, channel, frame);
  }

  /** Sends a frame on the open socket; false when there is none. */
  private send(frame: OutFrame): boolean {
    if (!this.ws) return false;
    if (frame.type === 'subscribe') this.subscribing.set(frame.channel, frame.since);
    this.ws.send(encodeFrame(this.protocol, frame));
    return true;
  }

  private async open(): Promise<void> {
    clearTimeout(this.timers.retry);
    if (isOffline()) {
      this.retry();
      return;
    }
    this.setState('connecting');
    let WS: WebSocketConstructor;
    let token: string | undefined;
    try {
      WS = this.options.WebSocket ?? (await loadWebSocket());
      token = await this.tokens.forConnection();
    } catch (err) {
      this.emit('error', new ZenError('token', `cannot connect: ${(err as Error).message}`));
      if (this.state === 'connecting') this.retry();
      return;
    }
    if (this.state !== 'connecting') return;
    const url = new URL(this.url);
    url.searchParams.set('protocol', this.protocol);
    if (token) url.searchParams.set('access_token', token);
    const ws = new WS(url.toString());
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
    const lost = new ZenError('disconnected', `connection lost (${code})`);
    this.tokens.fail(lost);
    this.outbox.fail(lost, false);
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
    if (isOffline()) return;
    const delay = backoffDelay(this.attempt++, this.options.backoff);
    this.timers.retry = setTimeout(() => void this.open(), delay);
  }

  private onAccepted(session: string): void {
    clearTimeout(this.timers.connect);
    this.session = session;
    this.ownSessions.push(session);
    if (this.ownSessions.length > OWN_SESSIONS_KEPT) this.ownSessions.shift();
    if (this.everConnected) this.reconnects++;
    this.everConnected = true;
    this.timers.stable = setTimeout(() => (this.attempt = 0), this.options.backoff?.stableMs ?? BACKOFF_DEFAULTS.stableMs);
    this.tokens.scheduleCurrent();
    // Subscriptions first, then what waited for the connection, in order; queued before
    // the state changes, so that a `state` listener's requests go after them.
    this.outbox.restart([...this.subs.values()].map((s) => this.subscribeItem(s)));
    this.setState('connected');
    void this.outbox.pump();
  }

  private subscribeItem(sub: Subscription): QueueItem {
    const since = sub.sinceForResubscribe();
    const frame = (token?: string): OutFrame => {
      const f: OutFrame = { type: 'subscribe', channel: sub.channel };
      if (token !== undefined) f.token = token;
      if (since) f.since = since;
      return f;
    };
    const sign = this.options.signChannel;
    const session = this.session;
    if (!sub.channel.startsWith('private.') || !sign || !session) return { frame: frame(), membership: true, sub };
    return { frame: Promise.resolve(sign(session, sub.channel)).then(frame), membership: true, sub };
  }

  private shutdown(code?: number, reason?: string): void {
    if (this.state === 'closed') return;
    const ws = this.ws;
    this.ws = null;
    this.clearTimers();
    this.removeBrowserListeners?.();
    if (ws) {
      detach(ws);
      ws.close(1000);
    }
    const closed = new ZenError('closed', 'client closed');
    this.tokens.fail(closed);
    this.outbox.fail(closed, true);
    this.setState('closed', code, reason);
    for (const sub of this.subs.values()) sub.unsubscribe();
  }

  /**
   * In a browser: `offline` drops the socket (Chromium keeps an open WebSocket up when it
   * goes offline, though nothing can pass), and no attempt is made until `online`, which
   * starts one at once rather than at the end of the backoff.
   */
  private listenToBrowser(): (() => void) | null {
    const g = globalThis as BrowserGlobal;
    if (typeof g.addEventListener !== 'function' || typeof g.removeEventListener !== 'function') return null;
    const offline = (): void => {
      if (this.ws) this.drop(this.ws, 1006, 'offline');
    };
    const online = (): void => {
      if (this.state === 'disconnected') void this.open();
    };
    g.addEventListener('offline', offline);
    g.addEventListener('online', online);
    return () => {
      g.removeEventListener!('offline', offline);
      g.removeEventListener!('online', online);
    };
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
        const since = this.subscribing.get(f.channel);
        this.subscribing.delete(f.channel);
        this.subs.get(f.channel)?.handleSubscribed(f, since);
        return;
      }
      case 'event': {
        // The server never sends a session its own events; a replay after a reconnect
        // holds those the previous sessions sent: they are not news to this client either.
        if (f.from !== null && this.ownSessions.includes(f.from)) return;
        const { type: _type, ...event } = f;
        const sub = this.subs.get(f.channel);
        if (sub) sub.handleEvent(event);
        // Events of a channel just left (before `unsubscribed`) are dropped.
        else if (f.channel === '*') this.emit('message', event);
        return;
      }
      case 'received':
      case 'history':
      case 'presence':
        return this.answers.answered(f);
      case 'joined':
      case 'left':
        this.subs.get(f.channel)?.deliver(f.type, f.member);
        return;
      case 'unauthorized':
        return this.answers.refused(f.channel, ['unauthorized'], true);
      case 'error':
        return this.answers.error(f.channel, f.errors);
      case 'refreshed':
        return this.tokens.accepted(f.exp);
    }
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

/** Session ids of this client remembered to recognise its own events in a replay. */
const OWN_SESSIONS_KEPT = 32;

/** What the client uses of a browser's global scope, when there is one. */
interface BrowserGlobal {
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
  navigator?: { onLine?: boolean };
  location?: { href: string };
}

/** A browser that says it is offline (Node has no `navigator.onLine`). */
function isOffline(): boolean {
  return (globalThis as BrowserGlobal).navigator?.onLine === false;
}

function detach(ws: WebSocketLike): void {
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = () => undefined;
}
