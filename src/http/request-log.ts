/**
 * What the HTTP side of a node logs: an access-log line per response and per refused
 * WebSocket upgrade, and a `system` row in the audit trail per refused attempt.
 */
import type { IncomingMessage } from 'node:http';
import type { ZenError } from '../errors.js';
import type { AccessLogEntry } from './access-log.js';
import { entryFromHttp, type LoggedResponse } from './logged-response.js';
import { RefusalLimiter } from './refusal-limiter.js';
import { compileTrust, type TrustFunction } from '../config/trust-proxy.js';
import { clientAddress } from './client-address.js';

/** The audit row of a refused attempt: no session exists, so its columns are null. */
export interface RefusalRow {
  messageId: null;
  at: Date;
  sessionId: null;
  /** The token's user when the token was valid. */
  userId: string | null;
  direction: 'system';
  type: 'http.refused' | 'session.refused';
  channel: null;
  /** What was asked, by whom (address, user agent) and why it was refused. */
  payload: Record<string, unknown>;
  recipients: null;
}

/** Options of {@link RequestLog}. */
export interface RequestLogOptions {
  /** Where the lines go (an `AccessLog`). */
  accessLog: { log(entry: AccessLogEntry): void };
  /** Where refusals are recorded (the node's `AuditSink`). */
  audit: { record(row: RefusalRow): void };
  /** The proxies trusted to say the client's address (`--trust-proxy`; see client-address.ts); null: none. */
  trustProxy: string | null;
  /** Refused attempts written per client address per minute (`--audit-refused-per-minute`). Default 60. */
  refusedPerMinute?: number;
  /** Addresses whose rate is tracked (`--audit-refused-addresses`). Default 10000. */
  refusedAddresses?: number;
}

/** The node's HTTP logging; see the file comment. */
export class RequestLog {
  private readonly limiter: RefusalLimiter;
  private readonly trust: TrustFunction | null;

  constructor(private readonly o: RequestLogOptions) {
    this.limiter = new RefusalLimiter(o.refusedPerMinute ?? 60, o.refusedAddresses ?? 10_000);
    this.trust = compileTrust(o.trustProxy);
  }

  /** Call when a request arrives: its access-log line is written when the response closes. */
  response(req: IncomingMessage, res: LoggedResponse): void {
    const startedAt = process.hrtime.bigint();
    const time = new Date();
    res.once('close', () => {
      const entry = entryFromHttp(req, res, startedAt, time);
      entry.remoteAddr = this.clientAddress(req, entry.remoteAddr);
      this.o.accessLog.log(entry);
    });
  }

  /**
   * The client's address: `X-Forwarded-For` walked from the right past the trusted
   * proxies (`trustProxy`), starting at `socketAddr` (the socket's peer); IPv4-mapped
   * IPv6 addresses as plain IPv4.
   */
  clientAddress(req: IncomingMessage, socketAddr: string): string {
    return clientAddress(req, socketAddr, this.trust);
  }

  /**
   * A refused request to an admin route (`GET /api/audit`, `/agent/*`): a `system`
   * `http.refused` row in the audit trail (the token's user when it was valid; the payload
   * says what was asked, by whom, and why it was refused). The access log has its line too.
   */
  refusedRequest(req: IncomingMessage, err: ZenError, userId: string | null): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    this.recordRefusal('http.refused', req, userId, { status: err.status, error: err.message, code: err.code, method: req.method ?? 'GET', path });
  }

  /**
   * A refused upgrade: an access-log line, and — for a bad or expired token, an origin or
   * a protocol choice refused — a `system` `session.refused` row in the audit trail (no
   * session exists, so its columns are null; the payload says who tried and why).
   */
  refusedUpgrade(req: IncomingMessage, status: number, body: string): void {
    const remoteAddr = this.clientAddress(req, req.socket.remoteAddress ?? '');
    let reason: { error?: unknown; code?: unknown } = {};
    try {
      reason = JSON.parse(body) as typeof reason;
    } catch {
      // not JSON: the status says it
    }
    // A wrong path (404) or a draining server (503) is no attempt to get in: access log only.
    if (status !== 404 && status !== 503) this.recordRefusal('session.refused', req, null, { status, error: reason.error ?? null, code: reason.code ?? null });
    this.o.accessLog.log({
      remoteAddr,
      remoteUser: null,
      time: new Date(),
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      httpVersion: req.httpVersion,
      status,
      // The transport writes `body` right after this call, on a socket still writable.
      bodyBytesSent: req.socket.writable ? Buffer.byteLength(body) : 0,
      referer: req.headers.referer ?? null,
      userAgent: req.headers['user-agent'] ?? null,
      durationMs: 0
    });
  }

  /**
   * A `system` row for a refused attempt (no session): `why` plus the client's address and
   * user agent, at a bounded rate per address (see RefusalLimiter); a row after some were
   * left out carries `suppressed` (this address) and `suppressedElsewhere` (forgotten addresses).
   */
  private recordRefusal(type: RefusalRow['type'], req: IncomingMessage, userId: string | null, why: Record<string, unknown>): void {
    const remoteAddr = this.clientAddress(req, req.socket.remoteAddress ?? '');
    const admitted = this.limiter.admit(remoteAddr);
    if (admitted === null) return;
    const counts: Record<string, number> = {};
    if (admitted.suppressed > 0) counts.suppressed = admitted.suppressed;
    if (admitted.forgotten > 0) counts.suppressedElsewhere = admitted.forgotten;
    this.o.audit.record({
      messageId: null,
      at: new Date(),
      sessionId: null,
      userId,
      direction: 'system',
      type,
      channel: null,
      payload: { ...why, remoteAddr, userAgent: req.headers['user-agent'] ?? null, ...counts },
      recipients: null
    });
  }
}
