import { readFileSync, accessSync, constants, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ZenError } from '../errors.js';
import { maskUrl } from '../log.js';
import { compileTrust } from './trust-proxy.js';
import { resolveAutoWorkers } from './auto-workers.js';
import { parseWebhookTargets } from './webhook-targets.js';
import { OPTIONS, envName, flagName, type Config, type OptionSpec } from './options.js';

/** Raw command line: the command, its `--flags` (kebab-case → value) and positionals. */
export interface ParsedArgs {
  command: string | null;
  flags: Map<string, string | boolean>;
  positionals: string[];
}

/**
 * Splits argv into a command and flags. Accepts `--name value`, `--name=value`,
 * `--flag` (true) and `--no-flag` (false). A flag followed by another flag or by
 * nothing is boolean. A list option given twice adds to its list.
 */
export function parseArgv(argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | boolean>();
  const positionals: string[] = [];
  let command: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) {
        setFlag(flags, a.slice(2, eq), a.slice(eq + 1));
      } else if (a.startsWith('--no-')) {
        flags.set(a.slice(5), false);
      } else {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--')) {
          setFlag(flags, a.slice(2), next);
          i++;
        } else {
          flags.set(a.slice(2), true);
        }
      }
    } else if (a.startsWith('-') && a.length === 2) {
      flags.set(a === '-h' ? 'help' : a === '-v' ? 'version' : a.slice(1), true);
    } else if (command === null) {
      command = a;
    } else {
      positionals.push(a);
    }
  }
  return { command, flags, positionals };
}

/** Sets a flag; a list option given again (`--webhook A --webhook B`) adds to its list instead. */
function setFlag(flags: Map<string, string | boolean>, name: string, value: string): void {
  const before = flags.get(name);
  const key = BY_FLAG.get(name);
  if (typeof before === 'string' && key !== undefined && OPTIONS[key].type === 'list') flags.set(name, `${before},${value}`);
  else flags.set(name, value);
}

/** The console shipped with zenconn: the package's own `public/` (this file is dist/src/config/load.js). */
export const BUNDLED_PUBLIC = fileURLToPath(new URL('../../../public', import.meta.url));

const KEYS = Object.keys(OPTIONS) as Array<keyof Config>;
const BY_FLAG = new Map(KEYS.map((k) => [flagName(k).slice(2), k]));

function invalid(name: string, why: string): ZenError {
  return new ZenError('ERR_CONFIG_INVALID', `${name}: ${why}`);
}

function coerce(key: keyof Config, spec: OptionSpec, raw: unknown, source: string): Config[keyof Config] {
  const name = source === 'file' ? `${key} (config file)` : source === 'env' ? envName(key) : flagName(key);
  if (raw === null) return null as never;
  if (spec.whenTrue !== undefined) {
    if (raw === true || (typeof raw === 'string' && /^(true|yes|on)$/i.test(raw))) return spec.whenTrue;
    if (raw === false || (typeof raw === 'string' && /^(false|no|off)$/i.test(raw))) return null as never;
  }
  switch (spec.type) {
    case 'string': {
      if (typeof raw !== 'string' || raw === '') throw invalid(name, 'expected a non-empty string');
      if (spec.choices && !spec.choices.includes(raw)) throw invalid(name, `expected one of ${spec.choices.join(', ')}, got "${raw}"`);
      return raw;
    }
    case 'integer': {
      if (typeof raw === 'string' && spec.words?.includes(raw.trim())) return raw.trim() as never;
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n)) throw invalid(name, `expected an integer, got "${String(raw)}"`);
      if (spec.min !== undefined && n < spec.min) throw invalid(name, `must be at least ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) throw invalid(name, `must be at most ${spec.max}, got ${n}`);
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(true|1|yes|on)$/i.test(raw)) return true;
      if (typeof raw === 'string' && /^(false|0|no|off)$/i.test(raw)) return false;
      throw invalid(name, `expected true or false, got "${String(raw)}"`);
    }
    case 'list': {
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      throw invalid(name, 'expected a comma-separated list');
    }
  }
}

/**
 * Resolves the configuration: flag > env > config file > default, validated once and
 * frozen. Throws a `ZenError` whose message is one line naming the option and the fault.
 * `extraFlags` are the command's own flags (not config options), left alone here.
 */
export function loadConfig(
  flags: Map<string, string | boolean>,
  env: NodeJS.ProcessEnv = process.env,
  extraFlags: readonly string[] = []
): Readonly<Config> {
  for (const f of flags.keys()) {
    if (!BY_FLAG.has(f) && !extraFlags.includes(f) && f !== 'help' && f !== 'version') {
      throw new ZenError('ERR_CONFIG_INVALID', `--${f}: unknown option (see zenconn --help)`);
    }
  }
  const fileFlag = flags.get('config');
  const filePath = typeof fileFlag === 'string' ? fileFlag : env[envName('config')] ?? null;
  let file: Record<string, unknown> = {};
  if (filePath) {
    let text: string;
    try {
      text = readFileSync(filePath, 'utf8');
    } catch (err) {
      throw invalid('--config', `cannot read ${filePath}: ${(err as Error).message}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      file = parsed as Record<string, unknown>;
    } catch (err) {
      throw invalid('--config', `${filePath} is not valid JSON: ${(err as Error).message}`);
    }
    for (const k of Object.keys(file)) {
      if (!(k in OPTIONS) || k === 'config') throw new ZenError('ERR_CONFIG_UNKNOWN_KEY', k, filePath);
    }
  }
  const out: Record<string, unknown> = {};
  const given = new Set<keyof Config>();
  for (const key of KEYS) {
    const spec = OPTIONS[key];
    const flag = flags.get(flagName(key).slice(2));
    const envVal = env[envName(key)];
    if (flag !== undefined) {
      if (flag === true && spec.type !== 'boolean' && spec.whenTrue === undefined) throw invalid(flagName(key), 'expects a value');
      out[key] = coerce(key, spec, flag, 'flag');
    } else if (envVal !== undefined && envVal !== '') {
      out[key] = coerce(key, spec, envVal, 'env');
    } else if (key in file) {
      out[key] = coerce(key, spec, file[key], 'file');
    } else {
      out[key] = spec.default;
      continue;
    }
    given.add(key);
  }
  out.public = staticRoot(out.public as string, given.has('public'));
  if (out.workers === 'auto') out.workers = resolveAutoWorkers(out.maxConnections as number);
  const config = out as unknown as Config;
  validateCross(config);
  return Object.freeze(config);
}

/**
 * `off` turns static files off (null). A folder that was not given (the default
 * `./public`) and does not exist falls back to the bundled console, so `zenconn serve`
 * works in any folder; a folder that was given (flag, env or file) is used as it is, and
 * the static handler refuses it if it is missing.
 */
function staticRoot(value: string, given: boolean): string | null {
  if (value === 'off') return null;
  if (!given && !existsSync(value)) return BUNDLED_PUBLIC;
  return value;
}

/** Checks what one option alone cannot; URLs in messages have their password masked. */
function validateCross(c: Config): void {
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(c.database)) {
    throw invalid('--database', `expected sqlite:PATH or postgres://…, got "${maskUrl(c.database)}"`);
  }
  if ((c.tlsCert === null) !== (c.tlsKey === null)) {
    throw invalid(c.tlsCert === null ? '--tls-cert' : '--tls-key', '--tls-cert and --tls-key go together');
  }
  for (const [key, path] of [['tlsCert', c.tlsCert], ['tlsKey', c.tlsKey], ['jwtPublicKey', c.jwtPublicKey]] as const) {
    if (path === null) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch {
      throw invalid(flagName(key), `cannot read ${path}`);
    }
  }
  if (c.auditRetention !== null && c.auditRetention !== 'off' && !/^[1-9]\d*(ms|s|m|h|d)$/.test(c.auditRetention)) throw invalid('--audit-retention', `expected a duration like 30d, 12h or 90m, or off, got "${c.auditRetention}"`);
  if (c.bus !== null && !/^rediss?:\/\//.test(c.bus)) throw invalid('--bus', `expected redis://HOST:PORT/DB, got "${maskUrl(c.bus)}"`);
  if (c.trustProxy !== null) {
    try {
      compileTrust(c.trustProxy);
    } catch (err) {
      throw invalid('--trust-proxy', `${(err as Error).message} (expected addresses, CIDRs, loopback, linklocal, uniquelocal or a hop count)`);
    }
  }
  try {
    parseWebhookTargets(c.webhook, c.webhookEvents);
  } catch (err) {
    throw invalid('--webhook', (err as Error).message);
  }
  if (c.httpRequestTimeoutMs < c.httpHeadersTimeoutMs) throw invalid('--http-request-timeout-ms', 'must be at least --http-headers-timeout-ms');
  if (!c.wsPath.startsWith('/')) throw invalid('--ws-path', 'must start with /');
  if (c.idleTimeoutMs <= c.pingIntervalMs) throw invalid('--idle-timeout-ms', 'must be greater than --ping-interval-ms');
  if (c.rateLimitBurst < c.rateLimitPerSec / 10) throw invalid('--rate-limit-burst', 'too small for --rate-limit-per-sec');
}
