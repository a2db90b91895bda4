import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config/options.js';
import { ZenError, CloseCode } from './errors.js';
import type { ServerRole, Store } from './store/store.js';
import { createStore } from './store/open-store.js';
import { RecordWriter } from './store/record-writer.js';
import { AccessLog, entryFromHttp, trackBodyBytes } from './http/access-log.js';
import { createStaticHandler } from './http/static-files.js';
import { Router } from './http/router.js';
import { reply } from './http/respond.js';
import { broadcastApi } from './http/broadcast-api.js';
import { WsTransport } from './transport/ws-transport.js';
import type { Transport } from './transport/transport.js';
import { TokenVerifier } from './auth/tokens.js';
import { Hub, type HubObserver } from './channels/hub.js';
import { SessionManager } from './session/session-manager.js';
import type { Session } from './session/session.js';
import { decideUpgrade, type HandshakeResult } from './session/handshake.js';
import { jsonCodec } from './protocol/json-codec.js';
import { binaryCodec } from './protocol/binary-codec.js';
import { newId } from './protocol/ids.js';
import type { Bus } from './bus/bus.js';
import { LocalBus } from './bus/local-bus.js';
import { RedisBus } from './bus/redis-bus.js';
import { NullAuditSink, type AuditSink } from './audit/audit-sink.js';
import { createAuditSink } from './audit/create-audit-sink.js';
import { auditApi } from './audit/audit-api.js';

/** Lifecycle of a node. */
export type NodeState = 'starting' | 'ready' | 'draining' | 'closed';

/** How a node is placed: alone, or as a worker of an agent. */
export interface NodeOptions {
  config: Readonly<Config>;
  logger: Logger;
  /** Default `standalone`. */
  role?: ServerRole;
  /** The agent's server id, for a worker. */
  parentId?: string | null;
  /** Cross-process fan-out; default: a RedisBus when `config.bus` is set, else none (one process). */
  bus?: Bus;
  /** Told of session and membership changes (the agent's registry). */
  observer?: HubObserver<Session> | null;
  /**
   * Whether to listen on config.host:config.port. A worker of an agent takes the
   * connections the agent hands it (`acceptConnection`) and listens only on its
   * optional direct port. Default true.
   */
  listen?: boolean;
  /** Port to listen on instead of config.port (a worker's direct port). */
  port?: number;
}

/**
 * The composition root of one zenconn process: it wires the store and record writer,
 * the access log, static files and HTTP API, the socket transport, the session
 * manager, the channel hub, the bus and the audit sink, and runs the start and stop
 * sequences. It holds no protocol logic of its own.
 *
 * Start: open the store (exit if unreachable) → close out dead servers → register this
 * server → join the Redis bus (with `--bus`; not ready until Redis answers) → listen.
 * Stop: draining (readyz 503) → stop accepting → close sessions with 1001 → write their
 * rows → stopped_at → leave the bus → close the store and logs.
 */
export class ZenNode {
  readonly serverId = newId();
  state: NodeState = 'starting';
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly role: ServerRole;
  readonly router: Router;
  readonly bus: Bus;
  store!: Store;
  hub!: Hub<Session>;
  sessions!: SessionManager;
  audit!: AuditSink;
  server!: HttpServer | HttpsServer;
  private writer!: RecordWriter;
  private accessLog!: AccessLog;
  private readonly transport: Transport = new WsTransport();
  private verifier!: TokenVerifier;
  private heartbeat: NodeJS.Timeout | null = null;
  private dbReachable = true;
  private readonly opts: NodeOptions;
  /** The Redis bus this node made from `config.bus` (started and closed here). */
  private readonly ownBus: RedisBus | null = null;

  constructor(options: NodeOptions) {
    this.opts = options;
    this.config = options.config;
    this.logger = options.logger.child({ serverId: this.serverId });
    this.role = options.role ?? 'standalone';
    if (options.bus === undefined && this.config.bus !== null) {
      this.ownBus = new RedisBus({ url: this.config.bus, prefix: this.config.busPrefix, nodeId: this.serverId, logger: this.logger });
    }
    this.bus = options.bus ?? this.ownBus ?? new LocalBus();
    this.router = new Router(() => undefined);
  }

  /** Starts everything; resolves with the bound address once the port answers. */
  async start(): Promise<AddressInfo | null> {
    const c = this.config;
    // Everything that can be wrong with the configuration fails here, before a port is bound.
    this.accessLog = new AccessLog({ destination: c.accessLog, format: c.accessLogFormat });
    await this.accessLog.ready();
    // `--public off`: no static files; a path without a route is a 404.
    const staticFiles = c.public === null ? (req: IncomingMessage, res: ServerResponse) => reply(req, res, 404, { error: 'not found' }) : createStaticHandler({ root: c.public });
    this.verifier = new TokenVerifier({ secret: c.jwtSecret, publicKeyFile: c.jwtPublicKey });
    const tls = c.tlsCert && c.tlsKey ? this.loadTls() : null;

    this.store = createStore(c.database);
    await this.store.open();
    const now = new Date();
    const closed = await this.store.closeOutStaleServers(new Date(now.getTime() - c.staleServerMs), now);
    if (closed.servers > 0) this.logger.warn(closed, 'closed out servers that died without stopping');
    await this.store.registerServer({
      id: this.serverId,
      role: this.role,
      parentId: this.opts.parentId ?? null,
      hostname: hostname(),
      pid: process.pid,
      address: `${tls ? 'https' : 'http'}://${c.host}:${this.opts.port ?? c.port}`,
      startedAt: now
    });
    this.writer = new RecordWriter({
      store: this.store,
      serverId: this.serverId,
      batchMs: c.dbBatchMs,
      batchRows: c.dbBatchRows,
      maxPendingRecords: c.dbMaxPendingRecords,
      spoolDir: c.spoolDir,
      logger: this.logger
    });
    // Not ready until Redis answers; waits a few seconds for it, then retries in the background.
    await this.ownBus?.start();
    this.audit = c.audit ? await createAuditSink({ store: this.store, serverId: this.serverId, config: c, logger: this.logger }) : new NullAuditSink();

    this.hub = new Hub({
      transport: this.transport,
      bus: this.bus,
      audit: this.audit,
      channelSecret: c.channelSecret,
      maxChannelsPerSession: c.maxChannelsPerSession,
      observer: this.opts.observer ?? null
    });
    this.sessions = new SessionManager({
      serverId: this.serverId,
      hub: this.hub,
      transport: this.transport,
      audit: this.audit,
      recorder: this.writer,
      accessLog: this.accessLog,
      limits: {
        maxBufferedBytes: c.maxBufferedBytes,
        rateLimitPerSec: c.rateLimitPerSec,
        rateLimitBurst: c.rateLimitBurst,
        rateLimitMaxRejected: c.rateLimitMaxRejected
      },
      pingIntervalMs: c.pingIntervalMs,
      idleTimeoutMs: c.idleTimeoutMs
    });

    const router = new Router((req, res) => staticFiles(req, res));
    (this as { router: Router }).router = router;
    router.add('GET', '/healthz', (req, res) => reply(req, res, 200, { status: 'ok', state: this.state }));
    router.add('GET', '/readyz', async (req, res) => {
      this.dbReachable = await this.store.ping();
      const checks = { database: this.dbReachable, bus: this.bus.ready, audit: this.audit.healthy, state: this.state };
      const ok = checks.database && checks.bus && checks.audit && this.state === 'ready';
      reply(req, res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', ...checks });
    });
    router.add('POST', '/api/broadcast', broadcastApi(this.hub, this.verifier, c.maxHttpBodyBytes, this.audit));
    router.add('GET', '/api/audit', auditApi(this.store, this.verifier, (req, err, userId) => this.recordRefusedRequest(req, err, userId)));
    // The demo console's MessagePack codec, straight from the msgpackr package.
    const msgpackrBrowser = createStaticHandler({ root: dirname(createRequire(import.meta.url).resolve('msgpackr')) });
    router.add('GET', '/zenconn/msgpackr.js', (req, res) => {
      req.url = '/index.min.js';
      msgpackrBrowser(req, res);
    });

    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handleRequest(req, res);
    this.server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    this.transport.attach<HandshakeResult>(this.server, {
      path: c.wsPath,
      maxPayloadBytes: c.maxPayloadBytes,
      decide: (req) => (this.state === 'ready' ? decideUpgrade(req, { verifier: this.verifier, anonymous: c.anonymous, allowedOrigins: c.allowedOrigins }) : { accept: false, status: 503, body: '{"error":"draining"}' }),
      onConnection: (conn, req, ctx) => {
        this.sessions.accept(conn, {
          id: newId(),
          identity: ctx.identity,
          codec: ctx.protocol === 'bin' ? binaryCodec : jsonCodec,
          remoteAddr: this.remoteAddr(req, conn.remoteAddress),
          userAgent: req.headers['user-agent'] ?? null,
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          httpVersion: req.httpVersion,
          referer: req.headers.referer ?? null
        });
      },
      onRefused: (req, status, body) => this.refusedUpgrade(req, status, body)
    });
    this.sessions.start();
    this.heartbeat = setInterval(() => void this.touch(), c.serverHeartbeatMs);
    this.heartbeat.unref();

    let address: AddressInfo | null = null;
    if (this.opts.listen !== false || this.opts.port !== undefined) {
      const port = this.opts.port ?? c.port;
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(port, c.host, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
      address = this.server.address() as AddressInfo;
    }
    this.state = 'ready';
    this.logger.info({ address }, 'zenconn node ready'); // the logger's bindings carry the role
    return address;
  }

  /** Takes a connection accepted elsewhere (the agent's listener) as if it arrived here. */
  acceptConnection(socket: import('node:net').Socket): void {
    this.server.emit('connection', socket);
    socket.resume();
  }

  private handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = process.hrtime.bigint();
    const time = new Date();
    trackBodyBytes(res);
    res.once('close', () => {
      const entry = entryFromHttp(req, res, startedAt, time);
      entry.remoteAddr = this.remoteAddr(req, entry.remoteAddr);
      this.accessLog.log(entry);
    });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const route = this.router.match(req.method ?? 'GET', url);
    Promise.resolve()
      .then(() => route(req, res, url))
      .catch((err: unknown) => {
        this.logger.error({ err }, 'request handler failed');
        if (!res.headersSent) reply(req, res, err instanceof ZenError ? err.status : 500, { error: err instanceof ZenError ? err.message : 'internal error' });
        else res.destroy();
      });
  }

  private remoteAddr(req: IncomingMessage, fallback: string): string {
    if (this.config.trustProxy) {
      const xff = req.headers['x-forwarded-for'];
      const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
      if (first) return first;
    }
    return fallback.startsWith('::ffff:') && fallback.includes('.') ? fallback.slice(7) : fallback;
  }

  /**
   * A refused request to an admin route (`GET /api/audit`, `/agent/*`): a `system`
   * `http.refused` row in the audit trail (the token's user when it was valid; the payload
   * says what was asked, by whom, and why it was refused). The access log has its line too.
   */
  recordRefusedRequest(req: IncomingMessage, err: ZenError, userId: string | null): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    this.recordRefusal('http.refused', req, userId, { status: err.status, error: err.message, code: err.code, method: req.method ?? 'GET', path });
  }

  /** A `system` row for a refused attempt (no session): `why` plus the client's address and user agent. */
  private recordRefusal(type: 'http.refused' | 'session.refused', req: IncomingMessage, userId: string | null, why: Record<string, unknown>): void {
    this.audit.record({
      messageId: null,
      at: new Date(),
      sessionId: null,
      userId,
      direction: 'system',
      type,
      channel: null,
      payload: { ...why, remoteAddr: this.remoteAddr(req, req.socket.remoteAddress ?? ''), userAgent: req.headers['user-agent'] ?? null },
      recipients: null
    });
  }

  /**
   * A refused upgrade: an access-log line, and — for a bad or expired token, an origin or
   * a protocol choice refused — a `system` `session.refused` row in the audit trail (no
   * session exists, so its columns are null; the payload says who tried and why).
   */
  private refusedUpgrade(req: IncomingMessage, status: number, body: string): void {
    const remoteAddr = this.remoteAddr(req, req.socket.remoteAddress ?? '');
    let reason: { error?: unknown; code?: unknown } = {};
    try {
      reason = JSON.parse(body) as typeof reason;
    } catch {
      // not JSON: the status says it
    }
    // A wrong path (404) or a draining server (503) is no attempt to get in: access log only.
    if (status !== 404 && status !== 503) this.recordRefusal('session.refused', req, null, { status, error: reason.error ?? null, code: reason.code ?? null });
    this.accessLog.log({
      remoteAddr,
      remoteUser: null,
      time: new Date(),
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      httpVersion: req.httpVersion,
      status,
      bodyBytesSent: 0,
      referer: req.headers.referer ?? null,
      userAgent: req.headers['user-agent'] ?? null,
      durationMs: 0
    });
  }

  private loadTls(): { cert: Buffer; key: Buffer } {
    try {
      return { cert: readFileSync(this.config.tlsCert!), key: readFileSync(this.config.tlsKey!) };
    } catch (err) {
      throw new ZenError('ERR_TLS_LOAD', (err as Error).message);
    }
  }

  /** SIGHUP: reload the certificate and key; open sessions are not touched. */
  reloadTls(): void {
    if (!this.config.tlsCert || !('setSecureContext' in this.server)) return;
    try {
      (this.server as HttpsServer).setSecureContext(this.loadTls());
      this.logger.info('TLS certificate reloaded');
    } catch (err) {
      this.logger.error({ err }, 'TLS reload failed; keeping the previous certificate');
    }
  }

  /** SIGUSR1: reopen the access log file (logrotate). */
  reopenLogs(): void {
    this.accessLog.reopen();
  }

  private lastSweep = 0;

  /**
   * The heartbeat: refresh last_seen_at, and now and then close out servers that
   * vanished (a node of a shared database that died is closed out by the others).
   */
  private async touch(): Promise<void> {
    try {
      const now = new Date();
      await this.store.touchServer(this.serverId, now);
      this.dbReachable = true;
      if (now.getTime() - this.lastSweep >= this.config.staleServerMs / 2) {
        this.lastSweep = now.getTime();
        const closed = await this.store.closeOutStaleServers(new Date(now.getTime() - this.config.staleServerMs), now);
        if (closed.servers > 0) this.logger.warn(closed, 'closed out servers that stopped answering');
      }
    } catch (err) {
      if (this.dbReachable) this.logger.warn({ err: (err as Error).message }, 'database unreachable; holding records');
      this.dbReachable = false;
    }
  }

  /**
   * Graceful stop: stop accepting, close sessions with 1001, write their rows, mark
   * the server stopped. Resolves when done (the caller enforces the overall deadline).
   */
  async stop(code: number = CloseCode.GOING_AWAY): Promise<void> {
    if (this.state === 'draining' || this.state === 'closed') return;
    this.state = 'draining';
    if (this.heartbeat) clearInterval(this.heartbeat);
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    const left = (): number => Math.max(100, deadline - Date.now() - 500);
    this.server.close();
    this.transport.detach();
    await this.sessions.closeAll(code, 'server shutting down', Math.min(3000, left()));
    this.server.closeAllConnections();
    this.hub.close();
    await this.audit.flush(left());
    const flushed = await this.writer.flush(left());
    if (!flushed) this.logger.error({ pending: this.writer.pending }, 'session records left in the spool; they are written at the next start');
    try {
      await this.store.stopServer(this.serverId, new Date());
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'could not mark the server stopped');
    }
    await this.audit.close();
    await this.writer.close();
    await this.bus.close();
    await this.store.close();
    await this.accessLog.close();
    this.state = 'closed';
    this.logger.info('zenconn node stopped');
  }
}
