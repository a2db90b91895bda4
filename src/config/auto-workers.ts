import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ZenError } from '../errors.js';

/**
 * `--workers auto`: enough agent workers that `--max-connections` fits under the
 * per-process open-file limit (every session is one socket, one file), and never fewer
 * than the CPU count. Past AUTO_WORKERS_CAP the answer is an error that says what to
 * change, not a machine full of processes.
 */

/** Most workers `auto` picks (or the CPU count, when larger). */
export const AUTO_WORKERS_CAP = 64;
/** Fewest sessions per worker `auto` accepts; a lower open-file limit is an error. */
export const MIN_SESSIONS_PER_WORKER = 1000;

/** What the choice depends on (read from the machine by `resolveAutoWorkers`). */
export interface AutoWorkersInput {
  /** `--max-connections` (0 = no cap). */
  maxConnections: number;
  /** The soft RLIMIT_NOFILE every worker inherits; null when it cannot be read; Infinity when unlimited. */
  openFileLimit: number | null;
  cpus: number;
}

/**
 * Files a worker keeps for other things than sessions: the database, logs, IPC, the
 * listening socket, a handed-over socket in flight. 5 % of the limit, at least 256.
 */
export function reservedFiles(openFileLimit: number): number {
  return Math.max(256, Math.ceil(openFileLimit * 0.05));
}

/** Sessions one worker can hold under `openFileLimit`. */
export function sessionsPerWorker(openFileLimit: number): number {
  return openFileLimit === Infinity ? Infinity : openFileLimit - reservedFiles(openFileLimit);
}

/** The number of workers for `input`, or a ZenError (ERR_CONFIG_INVALID) saying why there is none. */
export function autoWorkers(input: AutoWorkersInput): number {
  const cap = Math.max(AUTO_WORKERS_CAP, input.cpus);
  if (input.maxConnections === 0) return Math.min(input.cpus, cap);
  if (input.openFileLimit === null) {
    throw new ZenError('ERR_CONFIG_INVALID', '--workers: auto cannot read the open-file limit (/proc/self/limits); give a number of workers');
  }
  const perWorker = sessionsPerWorker(input.openFileLimit);
  if (perWorker < MIN_SESSIONS_PER_WORKER) {
    throw new ZenError(
      'ERR_CONFIG_INVALID',
      `--workers: auto needs at least ${MIN_SESSIONS_PER_WORKER} sessions per worker, and the open-file limit ${input.openFileLimit} leaves ${Math.max(0, perWorker)}; raise it (ulimit -n) or give a number of workers`
    );
  }
  const needed = Math.ceil(input.maxConnections / perWorker);
  if (needed > cap) {
    throw new ZenError(
      'ERR_CONFIG_INVALID',
      `--workers: auto: --max-connections ${input.maxConnections} needs ${needed} workers of ${perWorker} sessions (open-file limit ${input.openFileLimit}), over the cap of ${cap}; raise the open-file limit (ulimit -n), lower --max-connections or give a number of workers`
    );
  }
  return Math.max(needed, Math.min(input.cpus, cap));
}

/** The soft `Max open files` of /proc/self/limits text: a number, Infinity (unlimited) or null (absent). */
export function parseOpenFileLimit(limits: string): number | null {
  const match = /^Max open files\s+(\S+)/m.exec(limits);
  if (match === null) return null;
  if (match[1] === 'unlimited') return Infinity;
  const n = Number(match[1]);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** This process's soft open-file limit (Linux: /proc/self/limits), null when unreadable. */
export function readOpenFileLimit(): number | null {
  try {
    return parseOpenFileLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return null;
  }
}

/** `autoWorkers` for this machine and process. */
export function resolveAutoWorkers(maxConnections: number): number {
  return autoWorkers({ maxConnections, openFileLimit: readOpenFileLimit(), cpus: availableParallelism() });
}
