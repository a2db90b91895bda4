import { ZenError } from '../errors.js';
import { loadConfig, type ParsedArgs } from '../config/load.js';
import type { Config } from '../config/options.js';

/** Exit status of a usage or configuration error. */
export const EXIT_USAGE = 2;

/** Prints one line to stderr and exits: 2 for configuration faults, 1 otherwise. */
export function fail(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`zenconn: ${msg}\n`);
  const usage = err instanceof ZenError && (err.code.startsWith('ERR_CONFIG') || err.code === 'ERR_TLS_LOAD' || err.code === 'ERR_STORE_URL');
  process.exit(usage ? EXIT_USAGE : 1);
}

/** Loads the configuration or exits 2 with one line. */
export function configOrExit(args: ParsedArgs, extraFlags: readonly string[] = []): Readonly<Config> {
  try {
    return loadConfig(args.flags, process.env, extraFlags);
  } catch (err) {
    fail(err);
  }
}

/** A string flag of a command, or null. */
export function stringFlag(args: ParsedArgs, name: string): string | null {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : null;
}
