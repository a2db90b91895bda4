/** How the bench starts zenconn: one command line, shared by the bench rows and the soak. */
import { join } from 'node:path';
import type { ServerSpec } from './server-process.js';

/** What a zenconn process needs from the run that starts it. */
export interface ZenconnContext {
  /** An empty directory for the database, also served as the public folder. */
  tmpdir: string;
  /** The HS256 secret of every token the bench signs. */
  secret: string;
  /** The repository root (bin/zenconn.js is under it). */
  root: string;
}

/**
 * `node bin/zenconn.js <command> --port 0 --host 127.0.0.1 --database sqlite:<tmp>/bench.db
 * --access-log off --public <tmp> --jwt-secret <secret> --log-level warn <flags>`.
 * `command` is `serve` or `agent`; `flags` are the caller's own (e.g. `--workers 2`).
 * zenconn prints `listening on http://HOST:PORT` when ready, which is what ServerProcess waits for.
 * `BENCH_SERVER_NODE_ARGS` (space-separated) goes before the script, for profiling:
 * `BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` (an agent's workers inherit it).
 */
export function zenconnSpec(ctx: ZenconnContext, command = 'serve', flags: readonly string[] = []): ServerSpec {
  return {
    label: `zenconn ${command}`,
    command: process.execPath,
    cwd: ctx.root,
    args: [
      ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
      'bin/zenconn.js',
      command,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--database',
      `sqlite:${join(ctx.tmpdir, 'bench.db')}`,
      '--access-log',
      'off',
      '--public',
      ctx.tmpdir,
      '--jwt-secret',
      ctx.secret,
      '--log-level',
      'warn',
      '--spool-dir',
      join(ctx.tmpdir, 'spool'),
      '--audit-journal-dir',
      join(ctx.tmpdir, 'journal'),
      ...flags
    ]
  };
}
