/**
 * Reading compose.yaml as Docker Compose does, for the deployment tests: YAML, `.env`
 * files, `${…}` interpolation and each service's resolved command and environment.
 * Only what compose.yaml uses is implemented; anything else throws rather than guess.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../helpers/process.js';

/** A service of a Compose file, as far as the tests read it. */
export interface ComposeService {
  image?: string;
  build?: string | { context: string; dockerfile?: string; args?: Record<string, string> };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: string | Array<string | { path: string; required?: boolean }>;
  ports?: Array<string | number | Record<string, unknown>>;
  expose?: Array<string | number>;
  profiles?: string[];
  depends_on?: string[] | Record<string, { condition?: string; required?: boolean }>;
  healthcheck?: { test?: string | string[]; [key: string]: unknown };
  ulimits?: Record<string, number | string | { soft: number | string; hard: number | string }>;
  volumes?: Array<string | Record<string, unknown>>;
  [key: string]: unknown;
}

/** A Compose file, as far as the tests read it. */
export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The repository's compose.yaml, parsed but not interpolated. */
export function readComposeFile(path = join(ROOT, 'compose.yaml')): unknown {
  return parseYaml(readFileSync(path, 'utf8'), { merge: true, uniqueKeys: true });
}

/**
 * Parses a `.env` file as Compose does for the cases used here: `KEY=VALUE` lines, `#`
 * comment lines, a ` #` comment after an unquoted value, single-quoted (literal) and
 * double-quoted values. A `$` in an unquoted or double-quoted value would be
 * interpolated by Compose, so it throws instead of guessing.
 */
export function parseDotenv(text: string, source = '.env'): Map<string, string> {
  const vars = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new Error(`${source}:${i + 1}: not KEY=VALUE: ${raw}`);
    const [, key, rest] = m as unknown as [string, string, string];
    let value: string;
    if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) throw new Error(`${source}:${i + 1}: unterminated single quote`);
      value = rest.slice(1, end);
    } else if (rest.startsWith('"')) {
      const end = rest.indexOf('"', 1);
      if (end < 0) throw new Error(`${source}:${i + 1}: unterminated double quote`);
      value = rest.slice(1, end);
    } else {
      value = rest.replace(/\s+#.*$/, '').trim();
    }
    if (value.includes('$') && !rest.startsWith("'")) throw new Error(`${source}:${i + 1}: quote a value holding $ in single quotes`);
    vars.set(key, value);
  });
  return vars;
}

/** A `${VAR:?message}` whose variable is unset or empty. */
export class MissingVariableError extends Error {}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * Compose's interpolation of one string: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, with
 * nested `${…}` in the default. Every variable name met is added to `used`.
 */
export function interpolate(text: string, vars: ReadonlyMap<string, string>, used: Set<string> = new Set()): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      // Find the matching brace, allowing nested ${…} in the default.
      let depth = 1;
      let j = i + 2;
      for (; j < text.length && depth > 0; j++) {
        if (text[j] === '{') depth++;
        else if (text[j] === '}') depth--;
      }
      if (depth !== 0) throw new Error(`unterminated \${ in "${text}"`);
      out += expand(text.slice(i + 2, j - 1), vars, used);
      i = j;
      continue;
    }
    const m = NAME.exec(text.slice(i + 1));
    if (!m) throw new Error(`a lone $ in "${text}" (write $$)`);
    used.add(m[0]);
    out += vars.get(m[0]) ?? '';
    i += 1 + m[0].length;
  }
  return out;
}

function expand(body: string, vars: ReadonlyMap<string, string>, used: Set<string>): string {
  const m = NAME.exec(body);
  if (!m) throw new Error(`bad variable reference \${${body}}`);
  const name = m[0];
  used.add(name);
  const op = /^(:?[-?+])?/.exec(body.slice(name.length))![0];
  const arg = body.slice(name.length + op.length);
  if (op === '' && arg !== '') throw new Error(`bad variable reference \${${body}}`);
  const value = vars.get(name);
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  switch (op) {
    case '':
      return value ?? '';
    case ':-':
      return nonEmpty ? value! : interpolate(arg, vars, used);
    case '-':
      return set ? value! : interpolate(arg, vars, used);
    case ':?':
      if (!nonEmpty) throw new MissingVariableError(`${name}: ${arg || 'required'}`);
      return value!;
    case '?':
      if (!set) throw new MissingVariableError(`${name}: ${arg || 'required'}`);
      return value!;
    case ':+':
      return nonEmpty ? interpolate(arg, vars, used) : '';
    case '+':
      return set ? interpolate(arg, vars, used) : '';
    default:
      throw new Error(`bad variable reference \${${body}}`);
  }
}

/** Interpolates every string value (not keys) of a parsed Compose document. */
export function interpolateDocument<T>(doc: T, vars: ReadonlyMap<string, string>, used: Set<string> = new Set()): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return interpolate(v, vars, used);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(doc) as T;
}

/** Every variable name that a document's `${…}` and `$VAR` refer to, defaults included (`$$` is not one). */
export function referencedVariables(doc: unknown): Set<string> {
  const used = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      for (const m of v.replace(/\$\$/g, '').matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) used.add(m[1]!);
    } else if (Array.isArray(v)) {
      v.forEach(walk);
    } else if (v !== null && typeof v === 'object') {
      Object.values(v).forEach(walk);
    }
  };
  walk(doc);
  return used;
}

/**
 * Every `${VAR:?…}` and `${VAR?…}` of a document (nested ones in defaults included), as
 * `VAR:?` / `VAR?`: the variables without which Compose refuses to start.
 */
export function requiredVariables(doc: unknown): string[] {
  const found: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      for (const m of v.replace(/\$\$/g, '').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?\?)/g)) found.push(m[1]! + m[2]!);
    } else if (Array.isArray(v)) {
      v.forEach(walk);
    } else if (v !== null && typeof v === 'object') {
      Object.values(v).forEach(walk);
    }
  };
  walk(doc);
  return found;
}

/** A command or entrypoint as an argv array (Compose splits a string like a shell would, quotes aside). */
export function argv(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.map(String);
  if (/["'\\$]/.test(value)) throw new Error(`write the command as a list: ${value}`);
  return value.split(/\s+/).filter((s) => s !== '');
}

/**
 * A service's container environment as Compose builds it: its `env_file`s in order (the
 * project's `.env` is `dotenv`), then `environment` over them. A `KEY` without a value
 * takes it from `vars` (Compose: the shell or `.env`).
 */
export function serviceEnvironment(service: ComposeService, dotenv: ReadonlyMap<string, string>, vars: ReadonlyMap<string, string>): Map<string, string> {
  const env = new Map<string, string>();
  const files = service.env_file === undefined ? [] : Array.isArray(service.env_file) ? service.env_file : [service.env_file];
  for (const f of files) {
    const path = typeof f === 'string' ? f : f.path;
    if (path !== '.env' && path !== './.env') throw new Error(`env_file ${path}: only the project's .env is read by these tests`);
    for (const [k, v] of dotenv) env.set(k, v);
  }
  const e = service.environment;
  if (Array.isArray(e)) {
    for (const item of e) {
      const eq = item.indexOf('=');
      if (eq < 0) {
        const v = vars.get(item);
        if (v !== undefined) env.set(item, v);
      } else {
        env.set(item.slice(0, eq), item.slice(eq + 1));
      }
    }
  } else if (e) {
    for (const [k, v] of Object.entries(e)) {
      if (v === null) {
        const fromVars = vars.get(k);
        if (fromVars !== undefined) env.set(k, fromVars);
      } else {
        env.set(k, String(v));
      }
    }
  }
  return env;
}

/** The build context of a service, relative to the Compose file, or null for an image-only service. */
export function buildContext(service: ComposeService): string | null {
  if (service.build === undefined) return null;
  return typeof service.build === 'string' ? service.build : service.build.context;
}
