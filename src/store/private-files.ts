/**
 * Modes of the files zenconn writes: the database, its WAL, the journal, the spool and the
 * access log hold private channels' payloads and client addresses, so they are the
 * owner's only (0600, folders 0700), whatever the umask.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Mode of every file zenconn creates. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of every folder zenconn creates. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * `mkdir -p` that gives every folder it creates mode 0700 (set again with chmod: `mkdir`'s
 * mode goes through the umask). Folders that exist already keep theirs.
 */
export function makePrivateDir(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) {
    missing.push(d);
    if (dirname(d) === d) break;
  }
  if (missing.length === 0) return;
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  for (const d of missing) chmodSync(d, PRIVATE_DIR_MODE);
}

/** Sets mode 0600 on each of `paths` that exists (files another library created, such as SQLite's). */
export function makePrivateFiles(...paths: string[]): void {
  for (const p of paths) {
    try {
      chmodSync(p, PRIVATE_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
