/**
 * PostgreSQL helpers for tests. Tests run against a real server: the URL comes from
 * `ZENCONN_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`, and a
 * test that needs it FAILS (never skips) when it is unreachable.
 *
 *   const db = await withSchema();            // fresh schema zc_test_<random>
 *   const store = createStore(db.url);        // URL pinned to it via search_path
 *   …
 *   const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions');
 *   await db.drop();                          // in after()/finally
 */
import { randomBytes } from 'node:crypto';
import { Pool, escapeIdentifier } from 'pg';

/** The PostgreSQL server tests use: `ZENCONN_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`. */
export function testPostgresUrl(): string {
  return process.env.ZENCONN_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
}

/** `url` with `-c search_path=<schema>` added to its `options` parameter. */
export function urlWithSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  const existing = u.searchParams.get('options');
  u.searchParams.set('options', `${existing ? existing + ' ' : ''}-c search_path=${schema}`);
  return u.toString();
}

/** `url` with its host and port replaced (e.g. to go through a `tcp-proxy`). */
export function urlWithPort(url: string, port: number, host = '127.0.0.1'): string {
  const u = new URL(url);
  u.hostname = host;
  u.port = String(port);
  return u.toString();
}

/** A private schema for one test or test file; see {@link withSchema}. */
export interface TestSchema {
  /** The test server's URL with `search_path` pinned to `schema`. */
  url: string;
  /** The schema's name, `zc_test_<16 hex>`. */
  schema: string;
  /** Runs one statement with `search_path` = `schema`; returns the rows. */
  query<R extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Drops the schema with everything in it and closes the helper's connections. Safe to call twice. */
  drop(): Promise<void>;
}

/**
 * Makes a fresh schema on the test server (pass `create: false` to only pick the
 * name, e.g. to test that the store creates it). Rejects when the server is unreachable.
 */
export async function withSchema(options: { create?: boolean; baseUrl?: string } = {}): Promise<TestSchema> {
  const baseUrl = options.baseUrl ?? testPostgresUrl();
  const schema = `zc_test_${randomBytes(8).toString('hex')}`;
  const url = urlWithSearchPath(baseUrl, schema);
  const pool = new Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 3000, query_timeout: 30_000 });
  pool.on('error', () => undefined);
  try {
    if (options.create ?? true) await pool.query(`CREATE SCHEMA ${escapeIdentifier(schema)}`);
  } catch (err) {
    await pool.end();
    throw new Error(`test PostgreSQL at ${baseUrl} is unreachable or refused: ${(err as Error).message || err}`);
  }
  let dropped = false;
  return {
    url,
    schema,
    async query<R extends object>(sql: string, params: unknown[] = []) {
      return (await pool.query<R>(sql, params)).rows;
    },
    async drop() {
      if (dropped) return;
      dropped = true;
      try {
        await pool.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(schema)} CASCADE`);
      } finally {
        await pool.end();
      }
    }
  };
}
