import type { Connection, PreparedFrame, Transport } from '../transport/transport.js';
import type { Codec } from '../protocol/codec.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { Identity } from '../auth/grants.js';
import type { ProtocolName } from '../store/store.js';
import { CloseCode } from '../errors.js';
import type { CorkScheduler, Corkable } from './cork-scheduler.js';
import { RateLimiter } from './rate-limiter.js';

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
export class Session implements Corkable {
  readonly id: string;
  readonly identity: Identity;
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
  private corked = false;
  private readonly limiter: RateLimiter | null;

  constructor(
    readonly conn: Connection,
    init: SessionInit,
    private readonly transport: Transport,
    private readonly scheduler: CorkScheduler,
    private readonly limits: SessionLimits
  ) {
    this.id = init.id;
    this.identity = init.identity;
    this.codec = init.codec;
    this.protocol = init.codec.name;
    this.init = init;
    // A holder of `publish` is a trusted publisher (an app backend): not rate-limited.
    this.limiter = init.identity.grants.has('publish') ? null : new RateLimiter(limits.rateLimitPerSec, limits.rateLimitBurst);
  }

  get userId(): string | null {
    return this.identity.userId;
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

  uncorkNow(): void {
    this.corked = false;
    this.conn.uncork();
  }

  /** Starts the close handshake; the hub finishes the session when the socket closes. */
  close(code: number, reason?: string): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.closeCode = code;
    if (this.corked) this.uncorkNow();
    this.conn.close(code, reason);
  }
}
