import type { Connection, ConnectionHandler, PreparedFrame, Transport } from '../transport/transport.js';
import type { Codec } from '../protocol/codec.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { Identity } from '../auth/grants.js';
import type { ProtocolName } from '../protocol/codec.js';
import { CloseCode } from '../errors.js';
import type { CorkScheduler, Corkable } from './cork-scheduler.js';
import { RateLimiter } from './rate-limiter.js';
import type { ChannelMember } from '../channels/member.js';
import { ChannelSet } from '../channels/channel-set.js';

/** Lifecycle of a session. */
export type SessionState = 'open' | 'closing' | 'closed';

/** Per-session limits (from the config). */
export interface SessionLimits {
  /** Outbound bytes buffered before closing with 1013. */
  maxBufferedBytes: number;
  rateLimitPerSec: number;
  rateLimitBurst: number;
  /** Consecutive refused messages before closing with 1008. */
  rateLimitMaxRejected: number;
}

/** What a session was opened with (the upgrade's outcome). */
export interface SessionInit {
  id: string;
  identity: Identity;
  codec: Codec;
  remoteAddr: string;
  userAgent: string | null;
  /** Request line parts for the access log. */
  method: string;
  url: string;
  httpVersion: string;
  referer: string | null;
}

/** Where a session's connection events go (the session manager): one object for all sessions. */
export interface SessionEvents {
  /** An inbound frame (its activity already noted). */
  message(session: Session, data: Buffer, isBinary: boolean): void;
  /** A frame deferred while the session was held, now handled (see `release`). */
  replay(session: Session, data: Buffer, isBinary: boolean): void;
  /** The connection closed (once). */
  closed(session: Session, code: number): void;
}

/** What every session of one manager shares: one reference per session rather than one each. */
export interface SessionShared {
  transport: Transport;
  scheduler: CorkScheduler;
  limits: SessionLimits;
  events: SessionEvents;
}

/**
 * One WebSocket session: its identity, codec, subscriptions, counters, rate limit and
 * outbound path. It knows nothing of channels or other sessions; the hub does. It is
 * its connection's handler and passes the events on to the shared `SessionEvents`, so a
 * session costs no closures (#15, memory per session).
 */
export class Session implements Corkable, ChannelMember, ConnectionHandler {
  readonly id: string;
  readonly codec: Codec;
  readonly protocol: ProtocolName;
  readonly init: SessionInit;
  /** Wall-clock ms at accept (a number: a `Date` per session costs ~80 bytes more). */
  readonly connectedAtMs = Date.now();
  /** Performance-clock ms at accept, for the duration (monotonic, unlike the wall clock). */
  readonly startedAt = performance.now();
  /** Channels this session is subscribed to. */
  readonly channels = new ChannelSet();
  state: SessionState = 'open';
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  /** Performance-clock ms of the last inbound traffic (pongs included). */
  lastActivity = performance.now();
  /** Close code once closed (1006 when the peer vanished). */
  closeCode: number | null = null;
  /** The channel whose subscription the bus is confirming (see `hold`); null = none. */
  subscribing: string | null = null;
  private corked = false;
  /** Outbound frames held while a subscription is confirmed; null = not holding. */
  private held: PreparedFrame[] | null = null;
  private heldBytes = 0;
  /** Inbound frames that arrived while holding, handled in order on release; null = none yet. */
  private inbox: Array<{ data: Buffer; isBinary: boolean }> | null = null;
  private inboxBytes = 0;
  private limiter: RateLimiter | null;
  /** Who the session is: from the upgrade's token, replaced by each accepted `refresh`. */
  private current: Identity;

  constructor(
    readonly conn: Connection,
    init: SessionInit,
    private readonly shared: SessionShared
  ) {
    this.id = init.id;
    this.current = init.identity;
    this.codec = init.codec;
    this.protocol = init.codec.name;
    this.init = init;
    // A holder of `publish` is a trusted publisher (an app backend): not rate-limited.
    this.limiter = init.identity.grants.has('publish') ? null : new RateLimiter(shared.limits.rateLimitPerSec, shared.limits.rateLimitBurst);
    conn.setHandler(this);
  }

  /** When the session was accepted (wall clock). */
  get connectedAt(): Date {
    return new Date(this.connectedAtMs);
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    this.shared.events.message(this, data, isBinary);
  }

  /** Any inbound traffic, pongs included: the idle sweep reads it. */
  onActivity(): void {
    this.lastActivity = performance.now();
  }

  onClose(code: number): void {
    this.shared.events.closed(this, code);
  }

  get identity(): Identity {
    return this.current;
  }

  get userId(): string | null {
    return this.current.userId;
  }

  /**
   * Takes a refreshed identity (same user): its grants apply to the next frame. Gaining
   * or losing `publish` adds or drops the inbound rate limit.
   */
  reauthorize(identity: Identity): void {
    this.current = identity;
    const exempt = identity.grants.has('publish');
    if (exempt) this.limiter = null;
    else this.limiter ??= new RateLimiter(this.shared.limits.rateLimitPerSec, this.shared.limits.rateLimitBurst);
  }

  /** Takes a rate-limit token; false (and maybe a 1008 close) when over the limit. */
  admit(): boolean {
    if (this.limiter === null || this.limiter.take()) return true;
    if (this.limiter.rejectedInRow >= this.shared.limits.rateLimitMaxRejected) this.close(CloseCode.POLICY, 'rate limit exceeded');
    return false;
  }

  /** Encodes and sends one frame to this session alone. */
  send(frame: ServerFrame): void {
    if (this.state !== 'open') return;
    this.write(this.shared.transport.prepare(this.codec.encode(frame), this.codec.binary));
  }

  /**
   * Writes a prepared frame, corking the socket for the rest of the turn. A session
   * whose outbound buffer is over the cap is a slow consumer: closed with 1013.
   */
  write(frame: PreparedFrame): void {
    if (this.state !== 'open') return;
    if (this.held !== null) {
      this.held.push(frame);
      this.heldBytes += frame.length;
      this.checkHeld();
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.conn.cork();
      this.shared.scheduler.schedule(this);
    }
    this.conn.send(frame);
    this.bytesOut += frame.length;
    this.messagesOut++;
    if (this.conn.bufferedAmount > this.shared.limits.maxBufferedBytes) this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer');
  }

  /** Whether frames are held (a subscription is being confirmed). */
  get holding(): boolean {
    return this.held !== null;
  }

  /**
   * Holds the session while a subscription is confirmed: what is written to it and what
   * it sends wait, in order, until `release`. Held bytes, both ways, count toward
   * `maxBufferedBytes` (over it: 1013, as for a slow consumer).
   */
  hold(): void {
    if (this.held === null) this.held = [];
  }

  /** Keeps an inbound frame that arrived while holding, for `release`. */
  defer(data: Buffer, isBinary: boolean): void {
    (this.inbox ??= []).push({ data, isBinary });
    this.inboxBytes += data.length;
    this.checkHeld();
  }

  /**
   * Ends the hold: writes `first` (the answer that ended it), then the held frames, then
   * handles the deferred inbound frames until one of them holds the session again.
   */
  release(first: () => void): void {
    const held = this.held;
    if (held === null) return;
    this.held = null;
    this.heldBytes = 0;
    first();
    for (const frame of held) this.write(frame);
    const inbox = this.inbox;
    while (inbox !== null && this.held === null && this.state === 'open' && inbox.length > 0) {
      const m = inbox.shift()!;
      this.inboxBytes -= m.data.length;
      this.shared.events.replay(this, m.data, m.isBinary);
    }
  }

  private checkHeld(): void {
    if (this.heldBytes + this.inboxBytes + this.conn.bufferedAmount > this.shared.limits.maxBufferedBytes) {
      this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer');
    }
  }

  /**
   * Puts what is corked for this session ahead of the turn's other writes (see
   * CorkScheduler.scheduleFirst): its answers reach it before the fan-out's frames go out.
   */
  expedite(): void {
    if (this.corked) this.shared.scheduler.scheduleFirst(this);
  }

  uncorkNow(): void {
    if (!this.corked) return;
    this.corked = false;
    this.conn.uncork();
  }

  /** Starts the close handshake; the hub finishes the session when the socket closes. */
  close(code: number, reason?: string): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.closeCode = code;
    this.held = null;
    this.inbox = null;
    this.inboxBytes = 0;
    if (this.corked) this.uncorkNow();
    this.conn.close(code, reason);
  }
}
