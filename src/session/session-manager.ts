import type { AuthFailures } from '../auth/auth-failures.js';
import type { Connection, Transport } from '../transport/transport.js';
import { isDecodeFailure } from '../protocol/codec.js';
import type { Hub } from '../channels/hub.js';
import type { AuditSink } from '../audit/audit-sink.js';
import type { SessionOpenRecord, SessionCloseRecord } from '../store/store.js';
import type { AccessLogEntry } from '../http/access-log.js';
import { CloseCode } from '../errors.js';
import { ANONYMOUS, type Identity } from '../auth/grants.js';
import { InvalidTokenError, type TokenVerifier } from '../auth/tokens.js';
import { RefreshReason } from '../protocol/frames.js';
import { CorkScheduler } from './cork-scheduler.js';
import { ExpirySchedule } from './expiry-schedule.js';
import { Session, type SessionInit, type SessionLimits, type SessionShared } from './session.js';
import type { PresenceSource } from '../channels/presence.js';
import { answerPresence } from './presence-request.js';
import { SessionCounters } from './session-counters.js';

/** Where session rows go (the batched record writer). */
export interface SessionRecorder {
  recordOpen(record: SessionOpenRecord): void;
  recordClose(record: SessionCloseRecord): void;
}

/** Where the access log line of an ended session goes. */
export interface AccessLogSink {
  log(entry: AccessLogEntry): void;
}

export interface SessionManagerOptions {
  serverId: string;
  hub: Hub<Session>;
  transport: Transport;
  audit: AuditSink;
  recorder: SessionRecorder;
  accessLog: AccessLogSink;
  limits: SessionLimits;
  /** Verifies `refresh` tokens (the one the upgrade used); its clock tolerance extends `exp`. */
  verifier: TokenVerifier;
  /** Ping interval. Default 25000. */
  pingIntervalMs: number;
  /** Silence (pongs included) before a session is terminated. Default 60000. */
  idleTimeoutMs: number;
  /** Where `presence` answers come from, and their bound (`--presence-max`). */
  presence: { source: PresenceSource; max: number };
  /** Counts a `refresh` refused for its token (invalid, expired), as the upgrade's refusals are (the metrics). */
  authFailures?: AuthFailures;
}

/**
 * Runs sessions from accept to close: sends `accepted`, records the rows, pumps inbound
 * frames through the rate limit and the codec into the hub, pings and reaps idle
 * sessions, refreshes tokens and closes sessions whose token expired (4001), and on
 * close writes the session's row and access-log line.
 */
export class SessionManager {
  readonly scheduler = new CorkScheduler();
  /** Figures since start, for the metrics (plain increments). */
  readonly counters = new SessionCounters();
  private readonly o: SessionManagerOptions;
  private sweepTimer: NodeJS.Timeout | null = null;
  private lastPingAt = performance.now();
  private readonly closeWaiters = new Set<() => void>();
  /** Token expiries of every session with an `exp`, behind one timer. */
  private readonly expiries = new ExpirySchedule<Session>((s) => s.close(CloseCode.TOKEN_EXPIRED, 'token expired'));

  /** What every session references: the transport, the scheduler, the limits and where its events go. */
  private readonly shared: SessionShared;

  constructor(options: SessionManagerOptions) {
    this.o = options;
    this.shared = {
      transport: options.transport,
      scheduler: this.scheduler,
      limits: options.limits,
      events: {
        message: (session, data, isBinary) => this.onMessage(session, data, isBinary),
        replay: (session, data, isBinary) => this.handle(session, data, isBinary),
        closed: (session, code) => this.onClose(session, code)
      }
    };
  }

  /** Sessions waiting for their token to expire (a closed session is never among them). */
  get expiringSessions(): number {
    return this.expiries.size;
  }

  /** Schedules the close of `session` when `identity`'s token stops verifying (exp + tolerance). */
  private scheduleExpiry(session: Session, identity: Identity): void {
    if (identity.exp === null) this.expiries.delete(session);
    else this.expiries.set(session, (identity.exp + this.o.verifier.clockToleranceSec) * 1000);
  }

  /** Open sessions of this process. */
  get size(): number {
    return this.o.hub.sessions.size;
  }

  /** Takes an accepted connection: the first frame it gets is `accepted`. */
  accept(conn: Connection, init: SessionInit): Session {
    const { hub, audit } = this.o;
    const session = new Session(conn, init, this.shared);
    hub.add(session);
    this.counters.opened++;
    this.scheduleExpiry(session, init.identity);
    this.o.recorder.recordOpen({
      id: session.id,
      serverId: this.o.serverId,
      remoteAddr: init.remoteAddr,
      userAgent: init.userAgent,
      userId: session.userId,
      protocol: session.protocol,
      connectedAt: session.connectedAt
    });
    audit.record({
      messageId: null,
      at: session.connectedAt,
      sessionId: session.id,
      userId: session.userId,
      direction: 'system',
      type: 'session.open',
      channel: null,
      payload: { remoteAddr: init.remoteAddr, protocol: session.protocol, userAgent: init.userAgent },
      recipients: null
    });
    session.send({ type: 'accepted', data: session.id });
    audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'out', type: 'accepted', channel: null, payload: session.id, recipients: 1 });
    return session;
  }

  private onMessage(session: Session, data: Buffer, isBinary: boolean): void {
    if (session.state !== 'open') return;
    const { hub, audit } = this.o;
    session.bytesIn += data.length;
    session.messagesIn++;
    if (!session.admit()) {
      this.counters.rateLimited++;
      audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'in', type: 'rate-limited', channel: null, payload: null, recipients: null });
      if (session.state === 'open') hub.sendError(session, '*', ['rate limited']);
      return;
    }
    // A subscription is being confirmed: the frame waits its turn (see Session.hold).
    if (session.holding) session.defer(data, isBinary);
    else this.handle(session, data, isBinary);
  }

  /** Decodes an admitted frame and hands it to the hub. */
  private handle(session: Session, data: Buffer, isBinary: boolean): void {
    const { hub, audit } = this.o;
    const frame = session.codec.decode(data, isBinary);
    if (isDecodeFailure(frame)) {
      this.counters.received.invalid++;
      audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'in', type: 'invalid', channel: frame.channel, payload: frame.errors, recipients: null });
      hub.sendError(session, frame.channel, frame.errors);
      return;
    }
    this.counters.received[frame.type]++;
    switch (frame.type) {
      case 'subscribe':
        audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'in', type: 'subscribe', channel: frame.channel, payload: frame.token === undefined ? null : { token: '***' }, recipients: null });
        hub.subscribe(session, frame.channel, frame.token, frame.since ?? null);
        return;
      case 'history':
        audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'in', type: 'history', channel: frame.channel, payload: { since: frame.since, limit: frame.limit }, recipients: null });
        hub.history(session, frame.channel, frame.since, frame.limit);
        return;
      case 'unsubscribe':
        audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'in', type: 'unsubscribe', channel: frame.channel, payload: null, recipients: null });
        hub.unsubscribe(session, frame.channel);
        return;
      case 'broadcast': {
        const channel = frame.channel;
        const r = hub.broadcast(
          session,
          session.identity,
          channel,
          frame.data,
          (result) => {
            session.send({ type: 'received', channel, count: result.count });
            audit.record({ messageId: result.id, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'out', type: 'received', channel, payload: { count: result.count }, recipients: 1 });
            // Sent once the audit rows are durable, i.e. after the fan-out was queued: go first.
            session.expedite();
          },
          frame.hasBinary
        );
        if (r === 'audit full') {
          // Not recorded one by one (the storage is full): counted in the `audit.resumed` row.
          session.send({ type: 'error', channel, errors: [r] });
        } else if (typeof r === 'string') {
          audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'in', type: 'broadcast', channel, payload: frame.data, recipients: null });
          hub.sendError(session, channel, [r]);
        }
        return;
      }
      case 'refresh':
        // The token is a credential: the audit trail gets its mark, never its text.
        audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'in', type: 'refresh', channel: null, payload: { token: '***' }, recipients: null });
        this.refresh(session, frame.token);
        return;
      case 'presence':
        answerPresence(session, frame.channel, hub, audit, this.o.presence.source, this.o.presence.max);
        return;
    }
  }

  /**
   * Handles `refresh`: verifies the token as the upgrade does, and when it names the
   * session's user, takes its grants and expiry and answers `refreshed`; otherwise an
   * `error` frame, and the current token stays until its own expiry. The session is held
   * meanwhile, so the frames the client sent after `refresh` run with the new grants.
   */
  private refresh(session: Session, token: string): void {
    const { hub, audit } = this.o;
    if (session.identity === ANONYMOUS) {
      hub.sendError(session, '*', [RefreshReason.ANONYMOUS]);
      return;
    }
    session.hold();
    const answer = (outcome: Identity | string): void => {
      if (session.state !== 'open') return;
      session.release(() => {
        if (typeof outcome === 'string') {
          hub.sendError(session, '*', [outcome]);
          return;
        }
        session.reauthorize(outcome);
        this.scheduleExpiry(session, outcome);
        session.send({ type: 'refreshed', exp: outcome.exp });
        audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'out', type: 'refreshed', channel: null, payload: { exp: outcome.exp, grants: [...outcome.grants] }, recipients: 1 });
      });
    };
    this.o.verifier.verify(token).then(
      (identity) => answer(identity.userId === session.userId ? identity : RefreshReason.OTHER_USER),
      (err: unknown) => {
        this.o.authFailures?.count(err);
        answer(err instanceof InvalidTokenError && err.expired ? RefreshReason.EXPIRED : RefreshReason.REJECTED);
      }
    );
  }

  private onClose(session: Session, reportedCode: number): void {
    const code = session.closeCode ?? reportedCode;
    session.state = 'closed';
    this.expiries.delete(session);
    session.closeCode = code;
    const now = new Date();
    this.o.hub.remove(session, code);
    const counters = this.counters;
    counters.closed.set(code, (counters.closed.get(code) ?? 0) + 1);
    if (code === CloseCode.TRY_AGAIN_LATER) counters.slowConsumerCloses++;
    counters.closedBytesIn += session.bytesIn;
    counters.closedBytesOut += session.bytesOut;
    this.o.recorder.recordClose({
      id: session.id,
      disconnectedAt: now,
      closeCode: code,
      bytesIn: session.bytesIn,
      bytesOut: session.bytesOut,
      messagesIn: session.messagesIn,
      messagesOut: session.messagesOut
    });
    this.o.audit.record({ messageId: null, at: now, sessionId: session.id, userId: session.userId, direction: 'system', type: 'session.close', channel: null, payload: { code }, recipients: null });
    const init = session.init;
    this.o.accessLog.log({
      remoteAddr: init.remoteAddr,
      remoteUser: session.userId,
      time: session.connectedAt,
      method: init.method,
      url: init.url,
      httpVersion: init.httpVersion,
      status: 101,
      bodyBytesSent: session.bytesOut,
      referer: init.referer,
      userAgent: init.userAgent,
      durationMs: performance.now() - session.startedAt
    });
    if (this.size === 0) for (const w of this.closeWaiters) w();
  }

  /**
   * Starts pinging and reaping idle sessions: one sweep timer for the process. The sweep
   * runs at least four times per idle timeout, at an even fraction of the ping interval,
   * so pings go out every `pingIntervalMs` and not at the next sweep after it (with
   * 25 s / 75 s, sweeps every 18.75 s pinged every 37.5 s; now every 12.5 s, pinging every other).
   */
  start(): void {
    const { pingIntervalMs, idleTimeoutMs } = this.o;
    const every = Math.max(50, Math.floor(pingIntervalMs / Math.max(1, Math.ceil(pingIntervalMs / Math.max(1, Math.floor(idleTimeoutMs / 4))))));
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = performance.now();
    const ping = now - this.lastPingAt >= this.o.pingIntervalMs - 10;
    if (ping) this.lastPingAt = now;
    for (const s of this.o.hub.sessions.values()) {
      if (s.state !== 'open') continue;
      if (now - s.lastActivity > this.o.idleTimeoutMs) {
        s.closeCode = CloseCode.ABNORMAL;
        s.state = 'closing';
        s.conn.terminate();
      } else if (ping) {
        s.conn.ping();
      }
    }
  }

  /**
   * Closes every session with `code` and resolves once all are closed (their rows
   * recorded) or `timeoutMs` passed, after which the stragglers are terminated.
   */
  async closeAll(code: number, reason: string, timeoutMs: number): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.expiries.stop();
    if (this.size === 0) return;
    for (const s of this.o.hub.sessions.values()) s.close(code, reason);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.closeWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        for (const s of this.o.hub.sessions.values()) s.conn.terminate();
        // terminate() reports 'close' asynchronously; give it a moment.
        setTimeout(done, 200);
      }, timeoutMs);
      this.closeWaiters.add(done);
    });
  }
}
