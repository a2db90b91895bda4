import { availableParallelism } from 'node:os';

/**
 * Every option zenconn takes, in one table: its flag (`--kebab-case`), its env var
 * (`ZENCONN_UPPER_SNAKE`), its config-file key (camelCase), type, default and bounds.
 * docs/operations.md is checked against this table by a test.
 *
 * Precedence: flag > env > config file > default.
 */

/** How an option's text value is parsed. */
export type OptionType = 'string' | 'integer' | 'boolean' | 'list';

export interface OptionSpec {
  type: OptionType;
  /** Default value; `null` means unset. */
  default: string | number | boolean | string[] | null;
  /** One line for --help and the docs. */
  doc: string;
  min?: number;
  max?: number;
  /** Allowed values for a string option. */
  choices?: readonly string[];
  /** Which commands use it (informational, for --help). */
  commands?: readonly string[];
  /** The value of the flag given alone (`--trust-proxy`), and of `true` in env or file; without it a string option needs a value. */
  whenTrue?: string;
  /** Words an integer option takes besides numbers (`--workers auto`); loadConfig turns each into a number. */
  words?: readonly string[];
}

/** The resolved configuration (frozen after load). */
export interface Config {
  /** Interface to listen on. Default `0.0.0.0`. */
  host: string;
  /** TCP port; 0 picks a free one (printed on stdout). Default 8080. */
  port: number;
  /**
   * Folder of static files served at `/`; null (`--public off`) serves none. Default
   * `./public`, or the console bundled with zenconn when `./public` does not exist and the
   * option was not given.
   */
  public: string | null;
  /** `sqlite:PATH` or `postgres://…`. Default `sqlite:./data/zenconn.db`. */
  database: string;
  /** `-` (stdout), a file path, or `off`. Default `-`. */
  accessLog: string;
  /** nginx-style log format. Default: nginx `combined`. */
  accessLogFormat: string;
  /** PEM certificate file; with tlsKey the listener speaks HTTPS/WSS. Default unset. */
  tlsCert: string | null;
  /** PEM private key file. Default unset. */
  tlsKey: string | null;
  /** Application log level (pino). Default `info`. */
  logLevel: string;
  /** Path WebSocket upgrades are accepted on. Default `/`. */
  wsPath: string;
  /** Largest inbound frame; larger closes the session with 1009. Default 65536. */
  maxPayloadBytes: number;
  /** Server → client ping interval. Default 25000. */
  pingIntervalMs: number;
  /** A session that sent nothing (pongs included) for this long is terminated. Default 60000. */
  idleTimeoutMs: number;
  /** HS256 secret for bearer JWTs. Default unset. */
  jwtSecret: string | null;
  /** PEM (SPKI) public key file for RS256/ES256 JWTs. Default unset. */
  jwtPublicKey: string | null;
  /** Accept sessions without a token (no user, no grants). Default true. */
  anonymous: boolean;
  /** Key of the HMAC-SHA256 signatures for private channels. Default unset (grant only). */
  channelSecret: string | null;
  /** Outbound bytes buffered per session before it is closed with 1013. Default 1048576. */
  maxBufferedBytes: number;
  /** Sustained inbound messages per second per session. Default 100. */
  rateLimitPerSec: number;
  /** Inbound burst allowance per session. Default 200. */
  rateLimitBurst: number;
  /** Consecutive rate-limited messages before the session is closed with 1008. Default 100. */
  rateLimitMaxRejected: number;
  /** Channels one session may be subscribed to. Default 128. */
  maxChannelsPerSession: number;
  /** Events kept per channel in the hot history window (memory, or Redis with `--bus`). Default 1000. */
  historySize: number;
  /** How long an event stays in the hot history window, ms. Default 300000. */
  historyTtlMs: number;
  /** Most events one recovery replays (more answers recovered:false) and one `history` answer holds. Default 1000. */
  recoveryMax: number;
  /** Most members one presence answer (socket or `GET /api/presence`) lists; more are cut and flagged `truncated`. Default 1000. */
  presenceMax: number;
  /** How long an event sequenced by another process (agent, Redis) waits for its position before its audit row is recorded without one, ms. Default 10000. */
  positionWaitMs: number;
  /** Origins allowed to open a WebSocket (empty = any). Default empty. */
  allowedOrigins: string[];
  /**
   * The proxies trusted to report the client's address in X-Forwarded-For, as Express's
   * `trust proxy`: addresses, CIDRs, `loopback`/`linklocal`/`uniquelocal`, comma-separated,
   * or a hop count. `true` (or the flag alone) means `loopback`. Default unset (none).
   */
  trustProxy: string | null;
  /** Largest HTTP API request body; `POST /api/broadcast` also takes no more than maxPayloadBytes. Default 1048576. */
  maxHttpBodyBytes: number;
  /**
   * Connections the kernel queues for `accept` on the public port (the listen backlog;
   * Linux caps it at `net.core.somaxconn`). Beyond it a new connection's SYN is dropped
   * and its client retries after a second or more. Default 4096.
   */
  listenBacklog: number;
  /** Open connections of a process; under an agent, also of all its workers together (0 = no cap). Default 50000. */
  maxConnections: number;
  /** WebSocket connections (open or in their handshake) per client address, per process (0 = no cap). Default 10000. */
  maxConnectionsPerIp: number;
  /** WebSocket handshakes per second per client address, sustained, per process (0 = no limit). Default 1000. */
  handshakeRatePerIp: number;
  /** WebSocket handshakes per client address at once, per process. Default 10000. */
  handshakeBurstPerIp: number;
  /** Time allowed to receive a request's headers (also the first request of an idle connection). Default 20000. */
  httpHeadersTimeoutMs: number;
  /** Time allowed to receive a whole request, body included. Default 60000. */
  httpRequestTimeoutMs: number;
  /** Time allowed for a graceful stop before the process exits anyway. Default 10000. */
  shutdownTimeoutMs: number;
  /** How often `servers.last_seen_at` is refreshed. Default 5000. */
  serverHeartbeatMs: number;
  /** A server not seen for this long is closed out as dead. Default 30000. */
  staleServerMs: number;
  /** Session records are written at most this long after they happen. Default 50. */
  dbBatchMs: number;
  /** Most session records per transaction. Default 1000. */
  dbBatchRows: number;
  /** Records held in memory while the database is down before spilling to disk. Default 100000. */
  dbMaxPendingRecords: number;
  /** Folder for the record spool and the audit journal. Default `./data/spool`. */
  spoolDir: string;
  /** Agent: the local control socket (`off` = none). Default unset: `zenconn.sock` in the data folder, beside `spoolDir`. */
  controlSocket: string | null;
  /** Worker processes of `zenconn agent` (0 = the agent serves sessions itself; `auto` is resolved at load: see auto-workers.ts). Default: CPU count. */
  workers: number;
  /**
   * How an agent's connections reach its workers: `agent` (it accepts each one and hands
   * it to the least-loaded worker) or `shared` (every worker listens on the agent's port
   * and the kernel spreads the connections; see cluster/shared-port.ts). Default `agent`.
   */
  accept: 'agent' | 'shared';
  /** When set, worker i also listens on workerPorts + i. Default unset. */
  workerPorts: number | null;
  /** Agent: a worker whose IPC heartbeat (sent every second) stops for this long is killed and replaced. Default 10000. */
  workerHeartbeatTimeoutMs: number;
  /**
   * Agent: each worker is started with `--max-semi-space-size` of this many MiB (0 = Node's
   * default, 16; a flag given to the agent itself or in NODE_OPTIONS wins). Default 4: at
   * 19,000 sessions the workers' malloc heap after a connect-all/close-all went ~72 → ~22 MiB
   * each, with no change in CPU per handshake (2 MiB cost 4–12 % more; #15, docs/benchmarks.md).
   */
  workerSemiSpaceMib: number;
  /** Keep the audit trail (every message in the `audit` table). Default true. */
  audit: boolean;
  /** `ack`: `received`/200 only once the audit rows are durable; `async`: don't wait. Default `ack`. */
  auditDurability: string;
  /** `database`, `journal`, or `auto` (database for SQLite, journal for PostgreSQL): where `ack` rows count as durable. Default `auto`. */
  auditAckFrom: string;
  /** Delete audit rows older than this (`30d`, `12h`, `90m`); `off` keeps them forever. Default `30d`. */
  auditRetention: string | null;
  /** Audit storage (database plus journal) past which new broadcasts are refused; 0 = no cap. Default 10737418240 (10 GiB). */
  auditMaxBytes: number;
  /** How often the audit storage is measured against auditMaxBytes. Default 5000. */
  auditSizeCheckMs: number;
  /** Refused attempts (`http.refused`, `session.refused`) recorded per client address per minute; the rest are counted. Default 60. */
  auditRefusedPerMinute: number;
  /** Client addresses whose refused-attempt rate is tracked (least recently seen forgotten first). Default 10000. */
  auditRefusedAddresses: number;
  /** Most time audit rows wait before their group commit. Default 5. */
  auditBatchMs: number;
  /** Audit rows queued in memory before the journal takes the overflow. Default 100000. */
  auditMaxQueue: number;
  /** PostgreSQL audit transactions in flight at once. Default 2. */
  auditCommitsInFlight: number;
  /** Folder of the audit journal (rows not yet in the database). Default `./data/journal`. */
  auditJournalDir: string;
  /** `redis://HOST:PORT/DB` joins the nodes sharing it; unset = one machine. Default unset. */
  bus: string | null;
  /** Key and channel prefix on the bus. Default `zenconn:`. */
  busPrefix: string;
  /** Webhook receivers, http(s) URLs (comma-separated, or the flag repeated); `URL#name+name` chooses that URL's own events. Default empty (no webhooks). */
  webhook: string[];
  /** Events sent to every URL without its own `#…` list. Default `channel_occupied,channel_vacated,member_added,member_removed`. */
  webhookEvents: string[];
  /** Key of the `X-Zenconn-Signature` HMAC-SHA256; unset sends no signature. Default unset. */
  webhookSecret: string | null;
  /** Most events per webhook POST. Default 100. */
  webhookBatchMax: number;
  /** A webhook POST not fully answered in this time failed (and is retried). Default 10000. */
  webhookTimeoutMs: number;
  /** Cap of the retry delay of a failing webhook receiver (it doubles from 100 ms). Default 60000. */
  webhookRetryMaxMs: number;
  /** Bytes of queued webhook events per URL past which new events are dropped (and logged). Default 1073741824 (1 GiB). */
  webhookMaxQueueBytes: number;
  /** A separate plain-HTTP listener for `GET /metrics`, without authentication (0 = none); under an agent, the agent's. Default unset (none). */
  metricsPort: number | null;
  /** Interface of the metrics listener. Default `127.0.0.1`. */
  metricsHost: string;
  /** Path to a JSON config file (flags and env still win). */
  config: string | null;
}

export const OPTIONS: Record<keyof Config, OptionSpec> = {
  host: { type: 'string', default: '0.0.0.0', doc: 'interface to listen on' },
  port: { type: 'integer', default: 8080, min: 0, max: 65535, doc: 'TCP port (0 = any free port, printed on stdout)' },
  public: {
    type: 'string',
    default: './public',
    doc: 'folder of static files served at /; off serves none; not given and no ./public: the bundled console'
  },
  database: { type: 'string', default: 'sqlite:./data/zenconn.db', doc: 'sqlite:PATH or postgres://USER@HOST:PORT/DB' },
  accessLog: { type: 'string', default: '-', doc: 'access log: - (stdout), a file path, or off' },
  accessLogFormat: {
    type: 'string',
    default: '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"',
    doc: 'nginx-style access log format ($variables as in nginx log_format)'
  },
  tlsCert: { type: 'string', default: null, doc: 'PEM certificate file (HTTPS and WSS on the same port)' },
  tlsKey: { type: 'string', default: null, doc: 'PEM private key file' },
  logLevel: {
    type: 'string',
    default: 'info',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    doc: 'application log level (JSON lines on stderr)'
  },
  wsPath: { type: 'string', default: '/', doc: 'path WebSocket upgrades are accepted on' },
  maxPayloadBytes: { type: 'integer', default: 65536, min: 1, max: 104857600, doc: 'largest inbound frame; larger closes with 1009' },
  pingIntervalMs: { type: 'integer', default: 25000, min: 100, max: 3600000, doc: 'server ping interval' },
  idleTimeoutMs: { type: 'integer', default: 60000, min: 200, max: 86400000, doc: 'close a session silent for this long (pongs count)' },
  jwtSecret: { type: 'string', default: null, doc: 'HS256 secret for bearer JWTs' },
  jwtPublicKey: { type: 'string', default: null, doc: 'PEM public key file for RS256/ES256 JWTs' },
  anonymous: { type: 'boolean', default: true, doc: 'accept sessions without a token' },
  channelSecret: { type: 'string', default: null, doc: 'HMAC-SHA256 key of private channel signatures' },
  maxBufferedBytes: { type: 'integer', default: 1048576, min: 1024, max: 1073741824, doc: 'outbound buffer per session (with what waits for a subscription); over it closes with 1013' },
  rateLimitPerSec: { type: 'integer', default: 100, min: 1, max: 1000000, doc: 'sustained inbound messages/s per session' },
  rateLimitBurst: { type: 'integer', default: 200, min: 1, max: 1000000, doc: 'inbound burst per session' },
  rateLimitMaxRejected: { type: 'integer', default: 100, min: 1, max: 1000000, doc: 'consecutive rate-limited messages before closing with 1008' },
  maxChannelsPerSession: { type: 'integer', default: 128, min: 1, max: 100000, doc: 'channels one session may join' },
  historySize: { type: 'integer', default: 1000, min: 0, max: 1000000, doc: 'events kept per channel in the hot history window (memory, or Redis with --bus)' },
  historyTtlMs: { type: 'integer', default: 300000, min: 1000, max: 604800000, doc: 'how long an event stays in the hot history window, ms' },
  recoveryMax: { type: 'integer', default: 1000, min: 0, max: 100000, doc: 'most events one recovery replays (more answers recovered:false) and one history answer holds' },
  presenceMax: { type: 'integer', default: 1000, min: 1, max: 100000, doc: 'most members one presence answer lists (more: cut, truncated:true)' },
  positionWaitMs: { type: 'integer', default: 10000, min: 100, max: 600000, doc: 'agent or --bus: how long a broadcast\'s audit row (and its received) waits for the position from the sequencer before it is recorded without one, ms' },
  allowedOrigins: { type: 'list', default: [], doc: 'comma-separated Origin allow-list for upgrades (empty = any)' },
  trustProxy: {
    type: 'string',
    default: null,
    whenTrue: 'loopback',
    doc: 'proxies trusted in X-Forwarded-For: addresses, CIDRs, loopback, linklocal, uniquelocal (comma-separated) or a hop count; the flag alone = loopback'
  },
  maxHttpBodyBytes: { type: 'integer', default: 1048576, min: 1, max: 104857600, doc: 'largest HTTP API request body (the API takes no more than --max-payload-bytes either)' },
  listenBacklog: { type: 'integer', default: 4096, min: 1, max: 65535, doc: 'connections the kernel queues for accept on the public port (capped at net.core.somaxconn); beyond it a SYN is dropped and the client retries after 1 s or more' },
  maxConnections: { type: 'integer', default: 50000, min: 0, max: 10000000, doc: 'open connections of a process, and of an agent with all its workers; over it 503 (0 = no cap)' },
  maxConnectionsPerIp: { type: 'integer', default: 10000, min: 0, max: 10000000, doc: 'WebSocket connections per client address (per process); over it 429 (0 = no cap)' },
  handshakeRatePerIp: { type: 'integer', default: 1000, min: 0, max: 10000000, doc: 'WebSocket handshakes/s per client address (per process); over it 429 (0 = no limit)' },
  handshakeBurstPerIp: { type: 'integer', default: 10000, min: 1, max: 10000000, doc: 'WebSocket handshakes per client address at once (the rate\'s bucket)' },
  httpHeadersTimeoutMs: { type: 'integer', default: 20000, min: 100, max: 3600000, doc: 'time to receive a request\'s headers, then 408 and close' },
  httpRequestTimeoutMs: { type: 'integer', default: 60000, min: 100, max: 3600000, doc: 'time to receive a whole request (body included), then 408 and close' },
  shutdownTimeoutMs: { type: 'integer', default: 10000, min: 100, max: 600000, doc: 'graceful stop deadline' },
  serverHeartbeatMs: { type: 'integer', default: 5000, min: 100, max: 10000, doc: 'servers.last_seen_at refresh interval' },
  staleServerMs: { type: 'integer', default: 30000, min: 1000, max: 86400000, doc: 'a server unseen this long is closed out as dead' },
  dbBatchMs: { type: 'integer', default: 50, min: 1, max: 60000, doc: 'session records are batched at most this long' },
  dbBatchRows: { type: 'integer', default: 1000, min: 1, max: 100000, doc: 'most session records per transaction' },
  dbMaxPendingRecords: { type: 'integer', default: 100000, min: 1, max: 100000000, doc: 'records held in memory during an outage before spilling to disk' },
  spoolDir: { type: 'string', default: './data/spool', doc: 'folder of the on-disk record spool' },
  controlSocket: { type: 'string', default: null, doc: 'agent: Unix control socket (mode 0600) answering /agent/* as admin; unset = zenconn.sock beside the spool folder; off = none' },
  workers: {
    type: 'integer',
    default: availableParallelism(),
    min: 0,
    max: 256,
    words: ['auto'],
    doc: 'agent: worker processes (0 = serve in the agent; auto = enough for --max-connections under the open-file limit, at least the CPU count, at most 64)'
  },
  accept: {
    type: 'string',
    default: 'agent',
    choices: ['agent', 'shared'],
    doc: "agent: how connections reach the workers: agent = the agent accepts each and hands it to the least-loaded worker; shared = every worker accepts on the agent's port, the kernel spreads them (faster handshakes; see Agent and workers)"
  },
  workerPorts: { type: 'integer', default: null, min: 1, max: 65535, doc: 'agent: worker i also listens on this + i' },
  workerSemiSpaceMib: {
    type: 'integer',
    default: 4,
    min: 0,
    max: 256,
    doc: "agent: each worker's V8 young generation (--max-semi-space-size), MiB; small lets socket read buffers go back to malloc between scavenges instead of piling up and fragmenting it (0 = Node's default, 16)"
  },
  workerHeartbeatTimeoutMs: { type: 'integer', default: 10000, min: 500, max: 600000, doc: 'agent: kill and replace a worker whose heartbeat stopped this long' },
  audit: { type: 'boolean', default: true, doc: 'keep the audit trail of every message' },
  auditDurability: { type: 'string', default: 'ack', choices: ['ack', 'async'], doc: 'ack: answer senders once audit rows are durable; async: do not wait' },
  auditAckFrom: {
    type: 'string',
    default: 'auto',
    choices: ['auto', 'database', 'journal'],
    doc: 'ack once rows are committed in the database, or appended to the local journal (copied to the database behind); auto: database for SQLite, journal for PostgreSQL'
  },
  auditRetention: { type: 'string', default: '30d', doc: 'delete audit rows older than this (e.g. 30d, 12h); off keeps all' },
  auditMaxBytes: { type: 'integer', default: 10737418240, min: 0, max: 1125899906842624, doc: 'audit storage (database plus journal) past which broadcasts are refused until retention frees space; 0 = no cap' },
  auditSizeCheckMs: { type: 'integer', default: 5000, min: 100, max: 3600000, doc: 'how often the audit storage is measured against --audit-max-bytes' },
  auditRefusedPerMinute: { type: 'integer', default: 60, min: 1, max: 1000000, doc: 'refused attempts recorded per client address per minute; the rest are counted in the next row' },
  auditRefusedAddresses: { type: 'integer', default: 10000, min: 1, max: 10000000, doc: 'client addresses whose refused-attempt rate is tracked (least recently seen forgotten first)' },
  auditBatchMs: { type: 'integer', default: 5, min: 0, max: 10000, doc: 'audit group-commit window' },
  auditMaxQueue: { type: 'integer', default: 100000, min: 1, max: 100000000, doc: 'audit rows held in memory before the journal takes the overflow' },
  auditCommitsInFlight: { type: 'integer', default: 2, min: 1, max: 8, doc: 'PostgreSQL audit transactions in flight at once (SQLite: always 1)' },
  auditJournalDir: { type: 'string', default: './data/journal', doc: 'folder of the audit journal' },
  bus: { type: 'string', default: null, doc: 'redis://HOST:PORT/DB joins the nodes sharing it' },
  busPrefix: { type: 'string', default: 'zenconn:', doc: 'key and channel prefix on the bus' },
  webhook: { type: 'list', default: [], doc: 'webhook receivers: http(s) URLs, comma-separated or the flag repeated; URL#name+name gives that URL its own events' },
  webhookEvents: {
    type: 'list',
    default: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'],
    doc: 'events sent to each webhook URL: channel_occupied, channel_vacated, member_added, member_removed, session_opened, session_closed'
  },
  webhookSecret: { type: 'string', default: null, doc: 'HMAC-SHA256 key of the X-Zenconn-Signature header of webhook POSTs' },
  webhookBatchMax: { type: 'integer', default: 100, min: 1, max: 10000, doc: 'most events per webhook POST (a POST also waits at most 100 ms for company)' },
  webhookTimeoutMs: { type: 'integer', default: 10000, min: 100, max: 600000, doc: 'a webhook POST not answered in this time failed and is retried' },
  webhookRetryMaxMs: { type: 'integer', default: 60000, min: 100, max: 3600000, doc: 'cap of the retry delay for a failing webhook receiver (doubles from 100 ms)' },
  webhookMaxQueueBytes: { type: 'integer', default: 1073741824, min: 1, max: 1125899906842624, doc: 'queued webhook events per URL (bytes on disk) past which new events are dropped and logged' },
  metricsPort: { type: 'integer', default: null, min: 0, max: 65535, doc: 'a separate listener answering GET /metrics without authentication (0 = none); under an agent, the agent\'s' },
  metricsHost: { type: 'string', default: '127.0.0.1', doc: 'interface of the --metrics-port listener' },
  config: { type: 'string', default: null, doc: 'JSON config file' }
};

/** `maxPayloadBytes` → `--max-payload-bytes`. */
export function flagName(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** `maxPayloadBytes` → `ZENCONN_MAX_PAYLOAD_BYTES`. */
export function envName(key: string): string {
  return 'ZENCONN_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}
