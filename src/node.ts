import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config/options.js';
import { ZenError, CloseCode } from './errors.js';
import type { ServerRole, Store } from './store/store.js';
import { createStore } from './store/open-store.js';
import { ServerPresence } from './store/server-presence.js';
import { RecordWriter } from './store/record-writer.js';
import { AccessLog } from './http/access-log-writer.js';
import { LoggedResponse } from './http/logged-response.js';
import { RequestLog } from './http/request-log.js';
import { Admission } from './http/admission.js';
import { createRequestHandler } from './http/request-handler.js';
import { createStaticHandler } from './http/static-files.js';
import { Router } from './http/router.js';
import { reply } from './http/respond.js';
import { WsTransport } from './transport/ws-transport.js';
import type { Transport } from './transport/transport.js';
import { TokenVerifier } from './auth/tokens.js';
import { Hub, type HubObserver } from './channels/hub.js';
import { bothObservers } from './channels/both-observers.js';
import { hubPresence, type PresenceSource } from './channels/presence.js';
import { SessionManager } from './session/session-manager.js';
import type { Session } from './session/session.js';
import { decideUpgrade, type HandshakeResult } from './session/handshake.js';
import { jsonCodec } from './protocol/json-codec.js';
import { binaryCodec } from './protocol/binary-codec.js';
import { newId } from './protocol/ids.js';
import type { Bus } from './bus/bus.js';
import { LocalBus } from './bus/local-bus.js';
import { LocalChannelLog } from './channels/local-log.js';
import { auditEventReader } from './audit/audit-events.js';
import type { EventFrame } from './protocol/frames.js';
import { RedisBus } from './bus/redis-bus.js';
import { NullAuditSink, type AuditSink } from './audit/audit-sink.js';
import { createAuditSink } from './audit/create-audit-sink.js';
import { Webhooks } from './webhooks/webhooks.js';
import { AuthFailures } from './auth/auth-failures.js';
import { NodeMetrics } from './metrics/node-metrics.js';
import { startMetricsListener, type MetricsListener } from './metrics/metrics-http.js';
import { registerNodeRoutes } from './node/routes.js';

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
  /** Where presence answers come from; default: this node's hub and, with `--bus`, the other nodes' members from Redis. A worker asks its agent. */
  presence?: PresenceSource;
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
  /** The HTTP routes; the agent API adds its own after start(). */
  readonly router = new Router();
  readonly bus: Bus;
  store!: Store;
  hub!: Hub<Session>;
  sessions!: SessionManager;
  audit!: AuditSink;
  server!: HttpServer | HttpsServer;
  private writer!: RecordWriter;
  private accessLog!: AccessLog;
  private requestLog!: RequestLog;
  /** Flood limits: connections, per-address upgrades and handshake rate (refusals counted in `admission.refused`). */
  admission!: Admission;
  private readonly transport: Transport = new WsTransport();
  private verifier!: TokenVerifier;
  private presence: ServerPresence | null = null;
  private readonly opts: NodeOptions;
  /** The Redis bus this node made from `config.bus` (started and closed here). */
  private readonly ownBus: RedisBus | null = null;
  /** With `--webhook`, on a node that is not an agent's worker (the agent sends for its workers). */
  webhooks: Webhooks | null = null;
  /** Credential refusals (upgrades and guarded routes), for the metrics. */
  readonly authFailures = new AuthFailures();
  /** This process's Prometheus metrics (`GET /metrics`; an agent's workers send them to it). */
  metrics!: NodeMetrics;
  private metricsListener: MetricsListener | null = null;

  constructor(options: NodeOptions) {
    this.opts = options;
    this.config = options.config;
    this.logger = options.logger.child({ serverId: this.serverId });
    this.role = options.role ?? 'standalone';
    if (options.bus === undefined && this.config.bus !== null) {
      this.ownBus = new RedisBus({ url: this.config.bus, prefix: this.config.busPrefix, nodeId: this.serverId, logger: this.logger, historySize: this.config.historySize, historyTtlMs: this.config.historyTtlMs, olderEvents: this.config.audit ? (ch, epoch, after, limit) => this.olderEvents(ch, epoch, after, limit) : null });
    }
    this.bus = options.bus ?? this.ownBus ?? new LocalBus();
  }

  private presenceSourceMemo: PresenceSource | null = null;

  /** Presence answers: the one given (a worker's agent), or this hub and the Redis bus's other nodes. */
  private presenceSource(): PresenceSource {
    return (this.presenceSourceMemo ??= this.opts.presence ?? hubPresence(this.hub, this.bus instanceof RedisBus ? this.bus : null));
  }

  /** A channel's events older than the hot window, from the audit trail (see LocalChannelLog). */
  private olderEvents(channel: string, epoch: string, after: number, limit: number): Promise<EventFrame[]> {
    return auditEventReader(this.store)(channel, epoch, after, limit);
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
    this.presence = new ServerPresence({
      store: this.store,
      logger: this.logger,
      server: { id: this.serverId, role: this.role, parentId: this.opts.parentId ?? null, address: `${this.scheme}://${c.host}:${this.opts.port ?? c.port}` },
      staleServerMs: c.staleServerMs,
      heartbeatMs: c.serverHeartbeatMs,
      sweepStale: true
    });
    await this.presence.register();
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
    this.requestLog = new RequestLog({
      accessLog: this.accessLog,
      audit: this.audit,
      trustProxy: c.trustProxy,
      refusedPerMinute: c.auditRefusedPerMinute,
      refusedAddresses: c.auditRefusedAddresses
    });

    if (Webhooks.enabled(c) && this.role !== 'worker') {
      this.webhooks = new Webhooks(c, this.serverId, this.logger);
      this.webhooks.start();
    }
    this.hub = new Hub({
      transport: this.transport,
      bus: this.bus,
      audit: this.audit,
      channelSecret: c.channelSecret,
      maxChannelsPerSession: c.maxChannelsPerSession,
      observer: bothObservers<Session>(this.opts.observer ?? null, this.webhooks?.observer ?? null),
      log: this.bus.log ?? new LocalChannelLog({ size: c.historySize, ttlMs: c.historyTtlMs }, c.audit ? (ch, epoch, after, limit) => this.olderEvents(ch, epoch, after, limit) : null),
      recoveryMax: c.recoveryMax,
      historyLimit: c.recoveryMax,
      positionWaitMs: c.positionWaitMs
    });
    this.sessions = new SessionManager({
      serverId: this.serverId,
      hub: this.hub,
      transport: this.transport,
      audit: this.audit,
      recorder: this.writer,
      accessLog: this.accessLog,
      verifier: this.verifier,
      limits: {
        maxBufferedBytes: c.maxBufferedBytes,
        rateLimitPerSec: c.rateLimitPerSec,
        rateLimitBurst: c.rateLimitBurst,
        rateLimitMaxRejected: c.rateLimitMaxRejected
      },
      presence: { source: this.presenceSource(), max: c.presenceMax },
      authFailures: this.authFailures,
      pingIntervalMs: c.pingIntervalMs,
      idleTimeoutMs: c.idleTimeoutMs
    });

    this.metrics = new NodeMetrics({ sessions: this.sessions, hub: this.hub, audit: this.audit, bus: this.bus, authFailures: this.authFailures, webhooks: this.webhooks });
    registerNodeRoutes(this.router, {
      config: c,
      role: this.role,
      state: () => this.state,
      store: this.store,
      bus: this.bus,
      audit: this.audit,
      hub: this.hub,
      verifier: this.verifier,
      presence: this.presenceSource(),
      authFailures: this.authFailures,
      onRefused: (req, err, userId) => this.recordRefusedRequest(req, err, userId),
      scrape: () => this.scrape(),
      ping: () => this.store.ping()
    });

    this.admission = new Admission({
      maxConnections: c.maxConnections,
      maxConnectionsPerIp: c.maxConnectionsPerIp,
      handshakeRatePerIp: c.handshakeRatePerIp,
      handshakeBurstPerIp: c.handshakeBurstPerIp,
      logger: this.logger
    });
    const handler = createRequestHandler({
      router: this.router,
      fallback: (req, res) => staticFiles(req, res),
      requestLog: this.requestLog,
      logger: this.logger,
      refuse: (req) => this.admission.overCap(req.socket)
    });
    const serverOptions = {
      ServerResponse: LoggedResponse,
      headersTimeout: c.httpHeadersTimeoutMs,
      requestTimeout: c.httpRequestTimeoutMs,
      // How often Node looks for requests past those deadlines (its default is 30 s).
      connectionsCheckingInterval: Math.max(50, Math.min(2000, Math.floor(c.httpHeadersTimeoutMs / 4)))
    };
    this.server = tls ? createHttpsServer({ ...tls, ...serverOptions }, handler) : createHttpServer(serverOptions, handler);
    // Under TLS a request's socket is the TLS socket, so that is the one counted.
    this.server.on(tls ? 'secureConnection' : 'connection', (socket: import('node:net').Socket) => this.admission.connectionOpened(socket));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      if (timedOut) this.admission.timedOut();
      if (socket.writable) socket.end(timedOut ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    this.transport.attach<HandshakeResult>(this.server, {
      path: c.wsPath,
      maxPayloadBytes: c.maxPayloadBytes,
      decide: (req) => {
        if (this.state !== 'ready') return { accept: false, status: 503, body: '{"error":"draining"}' };
        const refusal = this.admission.admitUpgrade(req.socket, this.requestLog.clientAddress(req, req.socket.remoteAddress ?? ''));
        if (refusal !== null) return { accept: false, ...refusal };
        return decideUpgrade(req, { verifier: this.verifier, anonymous: c.anonymous, allowedOrigins: c.allowedOrigins, authFailures: this.authFailures });
      },
      onConnection: (conn, req, ctx) => {
        this.sessions.accept(conn, {
          id: newId(),
          identity: ctx.identity,
          codec: ctx.protocol === 'bin' ? binaryCodec : jsonCodec,
          remoteAddr: this.requestLog.clientAddress(req, conn.remoteAddress),
          userAgent: req.headers['user-agent'] ?? null,
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          httpVersion: req.httpVersion,
          referer: req.headers.referer ?? null
        });
      },
      onRefused: (req, status, body) => this.requestLog.refusedUpgrade(req, status, body)
    });
    this.sessions.start();
    this.presence.startHeartbeat();

    let address: AddressInfo | null = null;
    if (this.opts.listen !== false || this.opts.port !== undefined) {
      const port = this.opts.port ?? c.port;
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ port, host: c.host, backlog: c.listenBacklog }, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
      address = this.server.address() as AddressInfo;
      // With port 0 the row was written before the port was known.
      if (address.port !== port) await this.presence.setAddress(`${this.scheme}://${c.host}:${address.port}`);
    }
    // Under an agent the agent owns the metrics listener.
    if (c.metricsPort && this.role !== 'worker') this.metricsListener = await startMetricsListener(c.metricsHost, c.metricsPort, () => this.scrape());
    this.state = 'ready';
    this.logger.info({ address }, 'zenconn node ready'); // the logger's bindings carry the role
    return address;
  }

  /**
   * Records `scheme://host:port` as this node's address in `servers`: a worker without a
   * direct port is reached on its agent's port, bound after the worker started.
   * Throws if the database does.
   */
  async setReachablePort(port: number): Promise<void> {
    await this.presence?.setAddress(`${this.scheme}://${this.config.host}:${port}`);
  }

  private get scheme(): 'http' | 'https' {
    return this.config.tlsCert && this.config.tlsKey ? 'https' : 'http';
  }

  /** Takes a connection accepted elsewhere (the agent's listener) as if it arrived here. */
  acceptConnection(socket: import('node:net').Socket): void {
    this.server.emit('connection', socket);
    socket.resume();
  }

  /**
   * A refused request to an admin route (`GET /api/audit`, `/agent/*`): a `system`
   * `http.refused` row in the audit trail; see {@link RequestLog.refusedRequest}.
   */
  recordRefusedRequest(req: IncomingMessage, err: ZenError, userId: string | null): void {
    this.authFailures.count(err);
    this.requestLog.refusedRequest(req, err, userId);
  }

  /** This process's metrics in the Prometheus text format. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.metrics.contentType, body: await this.metrics.text() };
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

  /**
   * Graceful stop: stop accepting, close sessions with 1001, write their rows, mark
   * the server stopped. Resolves when done (the caller enforces the overall deadline).
   */
  async stop(code: number = CloseCode.GOING_AWAY): Promise<void> {
    if (this.state === 'draining' || this.state === 'closed') return;
    this.state = 'draining';
    this.presence?.stopHeartbeat();
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    const left = (): number => Math.max(100, deadline - Date.now() - 500);
    this.server.close();
    await this.metricsListener?.close();
    this.transport.detach();
    await this.sessions.closeAll(code, 'server shutting down', Math.min(3000, left()));
    this.server.closeAllConnections();
    this.hub.close();
    if (this.webhooks !== null) {
      // A short try at the last events; what is unsent is sent by the next start.
      await this.webhooks.flush(Math.min(2000, left()));
      await this.webhooks.close();
    }
    await this.audit.flush(left());
    const flushed = await this.writer.flush(left());
    if (!flushed) this.logger.error({ pending: this.writer.pending }, 'session records left in the spool; they are written at the next start');
    await this.presence?.markStopped();
    await this.audit.close();
    await this.writer.close();
    await this.bus.close();
    await this.store.close();
    await this.accessLog.close();
    this.state = 'closed';
    this.logger.info('zenconn node stopped');
  }
}
