import { PostgresStore, type PostgresStoreOptions } from './postgres-store.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
import type { Store, StoreLogger } from './store.js';
import { parseStoreUrl } from './store-url.js';

/** Options of {@link createStore}; each goes to the backend the URL selects. */
export interface CreateStoreOptions {
  /** Passed to the PostgreSQL backend (pool size, timeouts). Default: its defaults. */
  postgres?: Omit<PostgresStoreOptions, 'logger'>;
  /** Passed to the SQLite backend (busy timeout). Default: its defaults. */
  sqlite?: SqliteStoreOptions;
  /** Where the backend logs. Default: nowhere. */
  logger?: StoreLogger;
}

/**
 * The store a database URL names, not yet opened (call `open()`, which connects and
 * migrates):
 * - `sqlite:PATH` — PATH relative to the current directory, its directory created on
 *   open; `sqlite::memory:` for a private in-memory database;
 * - `postgres://…` or `postgresql://…` — `?options=-c%20search_path%3Dname` selects the schema.
 *
 * Throws `ERR_STORE_URL` for anything else.
 */
export function createStore(url: string, options: CreateStoreOptions = {}): Store {
  const where = parseStoreUrl(url);
  if (where.kind === 'sqlite') return new SqliteStore(where.path, options.sqlite);
  return new PostgresStore(where.url, { ...options.postgres, logger: options.logger });
}
