import type { Migration } from './migration.js';

/**
 * SQLite schema, oldest first. Timestamps are ISO-8601 text in UTC with
 * milliseconds (`2026-11-27T06:30:46.123Z`): readable, and `<` orders them.
 * To change the schema, append `{ version: N + 1, name, up }` here and in `postgres.ts`.
 */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'servers_and_sessions',
    up: `
      CREATE TABLE servers (
        id           TEXT PRIMARY KEY,
        role         TEXT NOT NULL CHECK (role IN ('standalone', 'agent', 'worker')),
        parent_id    TEXT REFERENCES servers (id),
        hostname     TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        address      TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        stopped_at   TEXT
      );
      CREATE INDEX servers_liveness_idx ON servers (stopped_at, last_seen_at);

      CREATE TABLE sessions (
        id              TEXT PRIMARY KEY,
        server_id       TEXT NOT NULL REFERENCES servers (id),
        remote_addr     TEXT NOT NULL,
        user_agent      TEXT,
        user_id         TEXT,
        protocol        TEXT NOT NULL CHECK (protocol IN ('json', 'bin')),
        connected_at    TEXT NOT NULL,
        disconnected_at TEXT,
        close_code      INTEGER,
        bytes_in        INTEGER NOT NULL DEFAULT 0,
        bytes_out       INTEGER NOT NULL DEFAULT 0,
        messages_in     INTEGER NOT NULL DEFAULT 0,
        messages_out    INTEGER NOT NULL DEFAULT 0
      );
      -- Close-out looks up the sessions still open on one server.
      CREATE INDEX sessions_open_by_server_idx ON sessions (server_id) WHERE disconnected_at IS NULL;
    `
  }
];
