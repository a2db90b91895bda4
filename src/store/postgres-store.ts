import { Pool, escapeIdentifier, type PoolClient, type QueryConfig } from 'pg';
import { ZenError } from '../errors.js';
import { pendingMigrations, type Migration } from './migrations/migration.js';
import { postgresMigrations } from './migrations/postgres.js';
import { maskUrl } from '../log.js';
import { auditTableBytes, deleteAuditRowsBefore, queryAuditRows, readAuditEvents, writeAuditRows } from './postgres-audit.js';
import type {
  AuditQuery,
  AuditRecord,
  CloseOutResult,
  RecordBatch,
  ServerRecord,
  ServerRole,
  ServerRow,
  SessionCloseRecord,
  Store,
  StoreLogger
} from './store.js';

/** Options of {@link PostgresStore}. Every time is in milliseconds. */
export interface PostgresStoreOptions {
  /** Most connections the pool holds. Default 4. */
  maxConnections?: number;
  /** Limit on opening one connection (TCP, TLS, auth); `open()` rejects after it. Default 3000. */
  connectTimeoutMs?: number;
  /** Server-side `statement_timeout` of every connection. Default 10000. */
  statementTimeoutMs?: number;
  /** Client-side limit on one query, which also covers a network that went silent. Default 15000. */
  queryTimeoutMs?: number;
  /** An idle connection is closed after this long. Default 10000. */
  idleTimeoutMs?: number;
  /** Limit on the migration step of `open()`, including waiting for another process that migrates. Default 60000. */
  migrationTimeoutMs?: number;
  /** The migrations to apply at `open()`. Default `postgresMigrations`. */
  migrations?: readonly Migration[];
  /** Receives lost idle connections (warn). Default: none. */
  logger?: StoreLogger;
}

/** First key of the migration advisory lock; the second is `hashtext(schema)`. ("zc" + 1.) */
const MIGRATION_LOCK_CLASS = 0x7a63_0001;

interface ServerDbRow {
  id: string;
  role: ServerRole;
  parent_id: string | null;
  hostname: string;
  pid: number;
  address: string;
  started_at: Date;
  last_seen_at: Date;
  stopped_at: Date | null;
}

/** A readable reason for a failed connect (a refused dual-stack connect is an AggregateError without a message). */
function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (err.message) return err.message;
  if (code) return code;
  if (err instanceof AggregateError) return err.errors.map(reasonOf).join('; ');
  return err.name;
}

/**
 * Splits a `search_path` value (`"$user", public`, `my_schema`, `"Odd,Name"`) into
 * schema names, unquoted.
 */
export function parseSearchPath(value: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")*)"|([^,\s]+))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
    if (m[0] === '') break;
    out.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!);
  }
  return out;
}

/** One close per session id, the first one winning, as the sequential SQLite backend does. */
function firstClosePerSession(closes: SessionCloseRecord[]): SessionCloseRecord[] {
  const seen = new Set<string>();
  return closes.filter((c) => !seen.has(c.id) && (seen.add(c.id), true));
}

/**
 * The PostgreSQL backend, on a small `pg` pool. Every connection carries a
 * `statement_timeout` and every query a client-side timeout, so a lost server makes
 * calls reject instead of hanging. The URL's `options` parameter is honoured, e.g.
 * `postgres://u@host/db?options=-c%20search_path%3Dmy_schema`: tables live in the first
 * schema of `search_path`, which `open()` creates when it does not exist yet.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  /** The URL with its password masked, for logs. */
  readonly displayUrl: string;
  private readonly url: string;
  private readonly opts: Required<Omit<PostgresStoreOptions, 'logger'>>;
  private readonly logger: StoreLogger | undefined;
  private pool: Pool | null = null;
  private opening: Promise<void> | null = null;

  constructor(url: string, options: PostgresStoreOptions = {}) {
    this.url = url;
    this.displayUrl = maskUrl(url);
    this.logger = options.logger;
    this.opts = {
      maxConnections: options.maxConnections ?? 4,
      connectTimeoutMs: options.connectTimeoutMs ?? 3000,
      statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
      queryTimeoutMs: options.queryTimeoutMs ?? 15_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
      migrationTimeoutMs: options.migrationTimeoutMs ?? 60_000,
      migrations: options.migrations ?? postgresMigrations
    };
  }

  open(): Promise<void> {
    if (this.pool) return Promise.resolve();
    // Concurrent calls share one attempt (and one pool).
    this.opening ??= this.connect().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  private async connect(): Promise<void> {
    const o = this.opts;
    const pool = new Pool({
      connectionString: this.url,
      application_name: 'zenconn',
      max: o.maxConnections,
      connectionTimeoutMillis: o.connectTimeoutMs,
      idleTimeoutMillis: o.idleTimeoutMs,
      statement_timeout: o.statementTimeoutMs,
      query_timeout: o.queryTimeoutMs,
      keepAlive: true
    });
    // An idle connection that dies emits 'error' on the pool; unhandled, it would crash the process.
    pool.on('error', (err) => this.logger?.warn({ err, db: this.displayUrl }, 'idle database connection lost'));
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new ZenError('ERR_STORE_UNREACHABLE', this.displayUrl, reasonOf(err));
    }
    try {
      await this.migrate(client);
      client.release();
    } catch (err) {
      client.release(err as Error);
      await pool.end().catch(() => undefined);
      throw err;
    }
    this.pool = pool;
  }

  /**
   * Applies the pending migrations in one transaction. The transaction-scoped advisory
   * lock (per schema) makes a second process starting at the same moment wait, then
   * find nothing left to do.
   */
  private async migrate(client: PoolClient): Promise<void> {
    const timeoutMs = this.opts.migrationTimeoutMs;
    const q = <R extends object>(text: string, values: unknown[] = []) => {
      // query_timeout per query is supported by pg but missing from its types.
      const config: QueryConfig & { query_timeout: number } = { text, values, query_timeout: timeoutMs };
      return client.query<R>(config);
    };
    await client.query('BEGIN');
    await client.query(`SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}`);
    const { rows } = await q<{ search_path: string }>(`SELECT current_setting('search_path') AS search_path`);
    const schema = parseSearchPath(rows[0]!.search_path).find((s) => s !== '$user');
    await q(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, [MIGRATION_LOCK_CLASS, schema ?? '']);
    if (schema !== undefined) {
      const exists = await q(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]);
      if (exists.rowCount === 0) await q(`CREATE SCHEMA IF NOT EXISTS ${escapeIdentifier(schema)}`);
    }
    await q(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const applied = await q<{ version: number }>(`SELECT version FROM schema_migrations`);
    const pending = pendingMigrations(this.opts.migrations, new Set(applied.rows.map((r) => r.version)));
    for (const m of pending) {
      await q(m.up);
      await q(`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
    }
    await client.query('COMMIT');
  }

  private ready(): Pool {
    if (!this.pool) throw new Error('PostgresStore: open() has not completed');
    return this.pool;
  }

  /**
   * Runs `fn` in a transaction on one connection. On any error the connection is
   * destroyed rather than rolled back: closing it aborts the transaction, and a
   * connection in an unknown state never returns to the pool.
   */
  private async transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.ready().connect();
    // A checked-out connection that dies between queries emits 'error'; the next query reports it.
    const ignore = (): void => undefined;
    client.on('error', ignore);
    let failure: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.removeListener('error', ignore);
      client.release(failure);
    }
  }

  async registerServer(r: ServerRecord): Promise<void> {
    await this.ready().query(
      `INSERT INTO servers (id, role, parent_id, hostname, pid, address, started_at, last_seen_at, stopped_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7, NULL) ON CONFLICT (id) DO NOTHING`,
      [r.id, r.role, r.parentId, r.hostname, r.pid, r.address, r.startedAt]
    );
  }

  async setServerAddress(serverId: string, address: string): Promise<void> {
    await this.ready().query(`UPDATE servers SET address = $2 WHERE id = $1`, [serverId, address]);
  }

  async touchServer(serverId: string, at: Date): Promise<void> {
    await this.ready().query(`UPDATE servers SET last_seen_at = $2 WHERE id = $1`, [serverId, at]);
  }

  async stopServer(serverId: string, at: Date): Promise<void> {
    await this.ready().query(`UPDATE servers SET stopped_at = $2 WHERE id = $1 AND stopped_at IS NULL`, [
      serverId,
      at
    ]);
  }

  async closeOutServer(serverId: string, at: Date, closeCode: number): Promise<number> {
    // Data-modifying CTEs always run to completion, so one statement does both, atomically.
    const { rows } = await this.ready().query<{ sessions: number }>(
      `WITH closed AS (
         UPDATE sessions SET disconnected_at = $2, close_code = $3
          WHERE server_id = $1 AND disconnected_at IS NULL
         RETURNING 1
       ), stopped AS (
         UPDATE servers SET stopped_at = $2 WHERE id = $1 AND stopped_at IS NULL RETURNING 1
       )
       SELECT (SELECT count(*) FROM closed)::int AS sessions`,
      [serverId, at, closeCode]
    );
    return rows[0]!.sessions;
  }

  async closeOutStaleServers(staleBefore: Date, at: Date): Promise<CloseOutResult> {
    // 1006: those sessions ended without a close frame (CloseCode.ABNORMAL).
    const { rows } = await this.ready().query<CloseOutResult>(
      `WITH stale AS (
         UPDATE servers SET stopped_at = $2
          WHERE stopped_at IS NULL AND last_seen_at < $1
         RETURNING id
       ), closed AS (
         UPDATE sessions s SET disconnected_at = $2, close_code = 1006
           FROM stale
          WHERE s.server_id = stale.id AND s.disconnected_at IS NULL
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM stale)::int AS servers, (SELECT count(*) FROM closed)::int AS sessions`,
      [staleBefore, at]
    );
    return rows[0]!;
  }

  async writeBatch(batch: RecordBatch): Promise<void> {
    if (batch.opens.length === 0 && batch.closes.length === 0) return;
    const closes = firstClosePerSession(batch.closes);
    await this.transaction(async (client) => {
      const o = batch.opens;
      if (o.length > 0) {
        await client.query(
          `INSERT INTO sessions (id, server_id, remote_addr, user_agent, user_id, protocol, connected_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
           ON CONFLICT (id) DO NOTHING`,
          [
            o.map((r) => r.id),
            o.map((r) => r.serverId),
            o.map((r) => r.remoteAddr),
            o.map((r) => r.userAgent),
            o.map((r) => r.userId),
            o.map((r) => r.protocol),
            o.map((r) => r.connectedAt.toISOString())
          ]
        );
      }
      if (closes.length > 0) {
        // Only sessions still open are filled in; a close without its session row matches nothing.
        await client.query(
          `UPDATE sessions s
              SET disconnected_at = c.disconnected_at, close_code = c.close_code,
                  bytes_in = c.bytes_in, bytes_out = c.bytes_out,
                  messages_in = c.messages_in, messages_out = c.messages_out
             FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::int8[], $5::int8[], $6::int8[], $7::int8[])
                  AS c(id, disconnected_at, close_code, bytes_in, bytes_out, messages_in, messages_out)
            WHERE s.id = c.id AND s.disconnected_at IS NULL`,
          [
            closes.map((r) => r.id),
            closes.map((r) => r.disconnectedAt.toISOString()),
            closes.map((r) => r.closeCode),
            closes.map((r) => r.bytesIn),
            closes.map((r) => r.bytesOut),
            closes.map((r) => r.messagesIn),
            closes.map((r) => r.messagesOut)
          ]
        );
      }
    });
  }

  async writeAudit(rows: readonly AuditRecord[]): Promise<void> {
    return writeAuditRows(() => this.ready(), rows);
  }

  async auditEvents(channel: string, epoch: string, after: number, limit: number): Promise<AuditRecord[]> {
    return readAuditEvents(() => this.ready(), channel, epoch, after, limit);
  }

  async queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    return queryAuditRows(() => this.ready(), q);
  }

  async deleteAuditBefore(before: Date, limit: number): Promise<number> {
    return deleteAuditRowsBefore(() => this.ready(), before, limit);
  }

  async auditBytes(): Promise<number> {
    return auditTableBytes(() => this.ready());
  }

  async ping(): Promise<boolean> {
    try {
      await this.ready().query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async openSessionsByServer(): Promise<Map<string, number>> {
    const { rows } = await this.ready().query<{ server_id: string; n: string }>(
      `SELECT server_id, COUNT(*) AS n FROM sessions WHERE disconnected_at IS NULL GROUP BY server_id`
    );
    return new Map(rows.map((r) => [r.server_id, Number(r.n)]));
  }

  async listServers(): Promise<ServerRow[]> {
    const { rows } = await this.ready().query<ServerDbRow>(`SELECT * FROM servers ORDER BY started_at, id`);
    return rows.map((r) => ({
      id: r.id,
      role: r.role,
      parentId: r.parent_id,
      hostname: r.hostname,
      pid: r.pid,
      address: r.address,
      startedAt: r.started_at,
      lastSeenAt: r.last_seen_at,
      stoppedAt: r.stopped_at
    }));
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }
}
