import type { Connection, PreparedFrame, Transport } from '../transport/transport.js';
import type { Codec } from '../protocol/codec.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { Identity } from '../auth/grants.js';
import type { ProtocolName } from '../protocol/codec.js';
import { CloseCode } from '../errors.js';
import type { CorkScheduler, Corkable } from './cork-scheduler.js';
import { RateLimiter } from './rate-limiter.js';
import type { ChannelMember } from '../channels/member.js';

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

/**
 * One WebSocket session: its identity, codec, subscriptions, counters, rate limit and
 * outbound path. It knows nothing of channels or other sessions; the hub does.
 */
export class Session implements Corkable, ChannelMember {
  readonly id: string;
  readonly codec: Codec;
  readonly protocol: ProtocolName;
  readonly init: SessionInit;
  readonly connectedAt = new Date();
  readonly startedAtNs = process.hrtime.bigint();
  /** Channels this session is subscribed to. */
  readonly channels = new Set<string>();
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
  /** Handles a deferred inbound frame when the session is released (set by the session manager). */
  replay: ((data: Buffer, isBinary: boolean) => void) | null = null;
  private corked = false;
  /** Outbound frames held while a subscription is confirmed; null = not holding. */
  private held: PreparedFrame[] | null = null;
  private heldBytes = 0;
  /** Inbound frames that arrived while holding, handled in order on release. */
  private inbox: Array<{ data: Buffer; isBinary: boolean }> = [];
  private inboxBytes = 0;
  private limiter: RateLimiter | null;
  /** Who the session is: from the upgrade's token, replaced by each accepted `refresh`. */
  private current: Identity;

  constructor(
    readonly conn: Connection,
    init: SessionInit,
    private readonly transport: Transport,
    private readonly scheduler: CorkScheduler,
    private readonly limits: SessionLimits
  ) {
    this.id = init.id;
    this.current = init.identity;
    this.codec = init.codec;
    this.protocol = init.codec.name;
    this.init = init;
    // A holder of `publish` is a trusted publisher (an app backend): not rate-limited.
    this.limiter = init.identity.grants.has('publish') ? null : new RateLimiter(limits.rateLimitPerSec, limits.rateLimitBurst);
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
    else this.limiter ??= new RateLimiter(this.limits.rateLimitPerSec, this.limits.rateLimitBurst);
  }

  /** Takes a rate-limit token; false (and maybe a 1008 close) when over the limit. */
  admit(): boolean {
    if (this.limiter === null || this.limiter.take()) return true;
    if (this.limiter.rejectedInRow >= this.limits.rateLimitMaxRejected) this.close(CloseCode.POLICY, 'rate limit exceeded');
    return false;
  }

  /** Encodes and sends one frame to this session alone. */
  send(frame: ServerFrame): void {
    if (this.state !== 'open') return;
    this.write(this.transport.prepare(this.codec.encode(frame), this.codec.binary));
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
      this.scheduler.schedule(this);
    }
    this.conn.send(frame);
    this.bytesOut += frame.length;
    this.messagesOut++;
    if (this.conn.bufferedAmount > this.limits.maxBufferedBytes) this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer');
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
    this.inbox.push({ data, isBinary });
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
    while (this.held === null && this.state === 'open' && this.inbox.length > 0) {
      const m = this.inbox.shift()!;
      this.inboxBytes -= m.data.length;
      this.replay?.(m.data, m.isBinary);
    }
  }

  private checkHeld(): void {
    if (this.heldBytes + this.inboxBytes + this.conn.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer');
    }
  }

  /**
   * Puts what is corked for this session ahead of the turn's other writes (see
   * CorkScheduler.scheduleFirst): its answers reach it before the fan-out's frames go out.
   */
  expedite(): void {
    if (this.corked) this.scheduler.scheduleFirst(this);
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
    this.inbox = [];
    if (this.corked) this.uncorkNow();
    this.conn.close(code, reason);
  }
}
