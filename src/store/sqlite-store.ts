import { closeSync, existsSync, openSync } from 'node:fs';
import { makePrivateDir, makePrivateFiles, PRIVATE_FILE_MODE } from './private-files.js';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ZenError } from '../errors.js';
import { pendingMigrations, type Migration } from './migrations/migration.js';
import { sqliteMigrations } from './migrations/sqlite.js';
import { auditWriteStatements, iso, queryAuditRows, readAuditEvents } from './sqlite-audit.js';
import type {
  AuditQuery,
  AuditRecord,
  CloseOutResult,
  RecordBatch,
  ServerRecord,
  ServerRole,
  ServerRow,
  Store
} from './store.js';

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** How long a statement waits for another process's write lock, in ms (`busy_timeout`). Default 5000. */
  busyTimeoutMs?: number;
  /** The migrations to apply at `open()`. Default `sqliteMigrations`; tests may pass a longer list. */
  migrations?: readonly Migration[];
}


interface ServerDbRow {
  id: string;
  role: ServerRole;
  parent_id: string | null;
  hostname: string;
  pid: number;
  address: string;
  started_at: string;
  last_seen_at: string;
  stopped_at: string | null;
}

/**
 * Prepares every statement and transaction once; they are reused for the life of the
 * connection.
 */
function prepare(db: Database.Database) {
  const s = {
    insertServer: db.prepare(
      `INSERT INTO servers (id, role, parent_id, hostname, pid, address, started_at, last_seen_at, stopped_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (id) DO NOTHING`
    ),
    touchServer: db.prepare(`UPDATE servers SET last_seen_at = ? WHERE id = ?`),
    setServerAddress: db.prepare(`UPDATE servers SET address = ? WHERE id = ?`),
    stopServer: db.prepare(`UPDATE servers SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL`),
    closeOutSessions: db.prepare(
      `UPDATE sessions SET disconnected_at = ?, close_code = ? WHERE server_id = ? AND disconnected_at IS NULL`
    ),
    staleServers: db
      .prepare(`SELECT id FROM servers WHERE stopped_at IS NULL AND last_seen_at < ? ORDER BY id`)
      .pluck(),
    insertSession: db.prepare(
      `INSERT INTO sessions (id, server_id, remote_addr, user_agent, user_id, protocol, connected_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
    ),
    closeSession: db.prepare(
      `UPDATE sessions
          SET disconnected_at = ?, close_code = ?, bytes_in = ?, bytes_out = ?, messages_in = ?, messages_out = ?
        WHERE id = ? AND disconnected_at IS NULL`
    ),
    listServers: db.prepare(`SELECT * FROM servers ORDER BY started_at, id`),
    openSessions: db.prepare(`SELECT server_id, COUNT(*) AS n FROM sessions WHERE disconnected_at IS NULL GROUP BY server_id`),

    ping: db.prepare(`SELECT 1`).pluck()
  };
  const closeOut = (serverId: string, at: string, closeCode: number): number => {
    const sessions = s.closeOutSessions.run(at, closeCode, serverId).changes;
    s.stopServer.run(at, serverId);
    return sessions;
  };
  return {
    ...s,
    writeBatch: db.transaction((batch: RecordBatch): void => {
      for (const o of batch.opens) {
        s.insertSession.run(o.id, o.serverId, o.remoteAddr, o.userAgent, o.userId, o.protocol, iso(o.connectedAt));
      }
      // A close whose session row is missing updates nothing: no error, no row.
      for (const c of batch.closes) {
        s.closeSession.run(iso(c.disconnectedAt), c.closeCode, c.bytesIn, c.bytesOut, c.messagesIn, c.messagesOut, c.id);
      }
    }),
    audit: auditWriteStatements(db),
    closeOut: db.transaction(closeOut),
    closeOutStale: db.transaction((staleBefore: string, at: string): CloseOutResult => {
      const ids = s.staleServers.all(staleBefore) as string[];
      let sessions = 0;
      // 1006: those sessions ended without a close frame (CloseCode.ABNORMAL).
      for (const id of ids) sessions += closeOut(id, at, 1006);
      return { servers: ids.length, sessions };
    })
  };
}

type Statements = ReturnType<typeof prepare>;

/**
 * The embedded backend, on better-sqlite3 (synchronous; every method still returns
 * a promise, and a thrown error becomes a rejection). One connection, WAL mode,
 * `synchronous=NORMAL` (a commit survives a process crash; the last commits may be
 * lost on power failure), foreign keys on.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  /** Absolute file path, or `:memory:`. */
  readonly path: string;
  /** `busy_timeout` of the connection, in ms. */
  readonly busyTimeoutMs: number;
  private readonly migrations: readonly Migration[];
  private db: Database.Database | null = null;
  private stmts: Statements | null = null;
  private auditQueries = new Map<string, Database.Statement>();

  /** `path` is a file path (its directory is created at `open()`) or `:memory:`. */
  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = path;
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.migrations = options.migrations ?? sqliteMigrations;
  }

  async open(): Promise<void> {
    if (this.db) return;
    let db: Database.Database;
    // A new database file is the owner's only (0600; SQLite gives its -wal and -shm the same mode).
    const created = this.path !== ':memory:' && !existsSync(this.path);
    try {
      if (this.path !== ':memory:') makePrivateDir(dirname(this.path));
      if (created) closeSync(openSync(this.path, 'a', PRIVATE_FILE_MODE));
      db = new Database(this.path);
    } catch (err) {
      throw new ZenError('ERR_STORE_UNREACHABLE', `sqlite:${this.path}`, (err as Error).message);
    }
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(this.busyTimeoutMs))}`);
      db.pragma('journal_mode = WAL');
      if (created) makePrivateFiles(this.path, `${this.path}-wal`, `${this.path}-shm`);
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      this.migrate(db);
      this.stmts = prepare(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
  }

  /** Applies the pending migrations in one IMMEDIATE transaction, so two processes opening one file take turns. */
  private migrate(db: Database.Database): void {
    db.transaction(() => {
      db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        applied_at TEXT NOT NULL
      )`);
      const applied = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
      const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
      for (const m of pendingMigrations(this.migrations, applied)) {
        db.exec(m.up);
        record.run(m.version, m.name, iso(new Date()));
      }
    }).immediate();
  }

  private ready(): Statements {
    if (!this.stmts) throw new Error('SqliteStore: open() has not completed');
    return this.stmts;
  }

  async registerServer(r: ServerRecord): Promise<void> {
    const at = iso(r.startedAt);
    this.ready().insertServer.run(r.id, r.role, r.parentId, r.hostname, r.pid, r.address, at, at);
  }

  async setServerAddress(serverId: string, address: string): Promise<void> {
    this.ready().setServerAddress.run(address, serverId);
  }

  async touchServer(serverId: string, at: Date): Promise<void> {
    this.ready().touchServer.run(iso(at), serverId);
  }

  async stopServer(serverId: string, at: Date): Promise<void> {
    this.ready().stopServer.run(iso(at), serverId);
  }

  async closeOutServer(serverId: string, at: Date, closeCode: number): Promise<number> {
    return this.ready().closeOut(serverId, iso(at), closeCode);
  }

  async closeOutStaleServers(staleBefore: Date, at: Date): Promise<CloseOutResult> {
    return this.ready().closeOutStale(iso(staleBefore), iso(at));
  }

  async writeBatch(batch: RecordBatch): Promise<void> {
    const stmts = this.ready();
    if (batch.opens.length === 0 && batch.closes.length === 0) return;
    stmts.writeBatch(batch);
  }

  async writeAudit(rows: readonly AuditRecord[]): Promise<void> {
    this.ready().audit.write(rows);
  }

  async auditEvents(channel: string, epoch: string, after: number, limit: number): Promise<AuditRecord[]> {
    this.ready();
    return readAuditEvents(this.db!, channel, epoch, after, limit);
  }

  async queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    this.ready();
    return queryAuditRows(this.db!, this.auditQueries, q);
  }

  async deleteAuditBefore(before: Date, limit: number): Promise<number> {
    return this.ready().audit.deleteBefore(before, limit);
  }

  async auditBytes(): Promise<number> {
    this.ready();
    const db = this.db!;
    const pages = Number(db.pragma('page_count', { simple: true })) - Number(db.pragma('freelist_count', { simple: true }));
    return pages * Number(db.pragma('page_size', { simple: true }));
  }

  async ping(): Promise<boolean> {
    try {
      return this.ready().ping.get() === 1;
    } catch {
      return false;
    }
  }

  async openSessionsByServer(): Promise<Map<string, number>> {
    const rows = this.ready().openSessions.all() as Array<{ server_id: string; n: number }>;
    return new Map(rows.map((r) => [r.server_id, Number(r.n)]));
  }

  async listServers(): Promise<ServerRow[]> {
    const rows = this.ready().listServers.all() as ServerDbRow[];
    return rows.map((r) => ({
      id: r.id,
      role: r.role,
      parentId: r.parent_id,
      hostname: r.hostname,
      pid: r.pid,
      address: r.address,
      startedAt: new Date(r.started_at),
      lastSeenAt: new Date(r.last_seen_at),
      stoppedAt: r.stopped_at === null ? null : new Date(r.stopped_at)
    }));
  }

  /**
   * Stops this connection from checkpointing the WAL on its own commits. A checkpoint
   * copies pages back into the database file and fsyncs it: done by a commit, it stalls
   * the thread that committed for as long as the disk takes. Whoever calls this
   * checkpoints in its place, on another thread (the audit trail does: see
   * src/store/sqlite-audit-thread.ts); the WAL grows until it does.
   */
  disableAutoCheckpoint(): void {
    if (!this.db) throw new Error('SqliteStore: open() has not completed');
    this.db.pragma('wal_autocheckpoint = 0');
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = null;
    this.stmts = null;
    this.auditQueries.clear();
    db?.close();
  }
}
