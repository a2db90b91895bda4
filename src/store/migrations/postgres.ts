import type { Migration } from './migration.js';

/**
 * PostgreSQL schema, oldest first. Tables are created unqualified, so they land in
 * the first schema of the connection's `search_path` (see `PostgresStore.open`).
 * To change the schema, append `{ version: N + 1, name, up }` here and in `sqlite.ts`.
 */
export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'servers_and_sessions',
    up: `
      CREATE TABLE servers (
        id           text PRIMARY KEY,
        role         text NOT NULL CHECK (role IN ('standalone', 'agent', 'worker')),
        parent_id    text REFERENCES servers (id),
        hostname     text NOT NULL,
        pid          integer NOT NULL,
        address      text NOT NULL,
        started_at   timestamptz NOT NULL,
        last_seen_at timestamptz NOT NULL,
        stopped_at   timestamptz
      );
      CREATE INDEX servers_liveness_idx ON servers (stopped_at, last_seen_at);

      CREATE TABLE sessions (
        id              text PRIMARY KEY,
        server_id       text NOT NULL REFERENCES servers (id),
        remote_addr     text NOT NULL,
        user_agent      text,
        user_id         text,
        protocol        text NOT NULL CHECK (protocol IN ('json', 'bin')),
        connected_at    timestamptz NOT NULL,
        disconnected_at timestamptz,
        close_code      integer,
        bytes_in        bigint NOT NULL DEFAULT 0,
        bytes_out       bigint NOT NULL DEFAULT 0,
        messages_in     bigint NOT NULL DEFAULT 0,
        messages_out    bigint NOT NULL DEFAULT 0
      );
      -- Close-out looks up the sessions still open on one server.
      CREATE INDEX sessions_open_by_server_idx ON sessions (server_id) WHERE disconnected_at IS NULL;
    `
  },
  {
    version: 2,
    name: 'audit',
    up: `
      -- One row per message (see src/audit/). payload: the message's data as jsonb, as JSON
      -- clients see it (binary values as base64 strings); payload_bin: the exact value as
      -- MessagePack, set only when the JSON is not exact (binary values, dates, NUL characters…).
      CREATE TABLE audit (
        id          text PRIMARY KEY,
        message_id  text,
        at          timestamptz NOT NULL,
        server_id   text NOT NULL,
        session_id  text,
        user_id     text,
        direction   text NOT NULL CHECK (direction IN ('in', 'out', 'system')),
        type        text NOT NULL,
        channel     text,
        payload     jsonb,
        payload_bin bytea,
        recipients  integer
      );
      -- Every query is "the newest (or oldest) rows matching one filter": each index ends in
      -- (at, id), the keyset of the cursor, so a page is one index range scan. No index on
      -- message_id: message ids are UUID v7, so a lookup reads the few seconds of audit_at_idx
      -- around the time inside the id (see queryAudit).
      CREATE INDEX audit_at_idx ON audit (at, id);
      CREATE INDEX audit_channel_idx ON audit (channel, at, id) WHERE channel IS NOT NULL;
      CREATE INDEX audit_session_idx ON audit (session_id, at, id) WHERE session_id IS NOT NULL;
      CREATE INDEX audit_user_idx ON audit (user_id, at, id) WHERE user_id IS NOT NULL;
      -- Broadcast and event rows are most of the table and most of the writes: they stay out
      -- of this one (a page of them is found through audit_at_idx at once), the rare kinds
      -- (errors, refusals, sessions…) are found through it. Queries repeat its condition.
      CREATE INDEX audit_type_idx ON audit (type, at, id) WHERE type NOT IN ('broadcast', 'event');
    `
  },
  {
    version: 3,
    name: 'audit_positions',
    up: `
      -- An event's position on its channel (offset, epoch), on its \`out\` row: the history
      -- older than the hot window is read from here (docs/architecture.md, Positions).
      ALTER TABLE audit ADD COLUMN event_offset BIGINT;
      ALTER TABLE audit ADD COLUMN event_epoch TEXT;
      CREATE INDEX audit_position_idx ON audit (channel, event_epoch, event_offset) WHERE event_offset IS NOT NULL;
    `
  }
];
