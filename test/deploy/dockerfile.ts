/**
 * The Dockerfile, read and carried out without Docker: the deployment tests parse it and
 * run its COPY and RUN steps natively in a scratch folder, each stage's `/` mapped to a
 * folder of its own, then start its ENTRYPOINT, CMD and HEALTHCHECK from the result.
 * Only the instructions the Dockerfile uses are understood; any other one throws, so
 * the Dockerfile cannot drift away from what the test exercises.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, join, posix } from 'node:path';

/** One instruction: keyword, `--flag=value` options, and the rest (text, or the JSON array of an exec form). */
export interface Instruction {
  keyword: string;
  flags: Map<string, string>;
  text: string;
  json: string[] | null;
  line: number;
}

/** One `FROM … [AS name]` stage. */
export interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults. */
  globalArgs: Map<string, string>;
  stages: Stage[];
}

const KNOWN = new Set(['ARG', 'FROM', 'RUN', 'COPY', 'WORKDIR', 'ENV', 'USER', 'VOLUME', 'EXPOSE', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD', 'LABEL']);

/** Splits the text after a keyword into leading `--name=value` flags and the rest. */
function takeFlags(text: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = text;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest);
    if (!m) break;
    flags.set(m[1]!, m[2] ?? 'true');
    rest = rest.slice(m[0].length);
  }
  return { flags, rest: rest.trim() };
}

/** Parses Dockerfile text: comments, `\` continuations, stages. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.split('\n');
  const logical: Array<{ text: string; line: number }> = [];
  let acc: string | null = null;
  let start = 0;
  lines.forEach((raw, i) => {
    const t = raw.trim();
    if (t.startsWith('#') || (t === '' && acc === null)) return; // comments go, also inside continuations
    if (acc === null) {
      acc = '';
      start = i + 1;
    }
    if (t.endsWith('\\')) {
      acc += t.slice(0, -1) + ' ';
    } else {
      acc += t;
      logical.push({ text: acc.replace(/\s+/g, ' ').trim(), line: start });
      acc = null;
    }
  });
  if (acc !== null) throw new Error('Dockerfile ends inside a continuation');

  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const { text: l, line } of logical) {
    const sp = l.indexOf(' ');
    const keyword = (sp < 0 ? l : l.slice(0, sp)).toUpperCase();
    if (!KNOWN.has(keyword)) throw new Error(`Dockerfile:${line}: ${keyword} is not understood by test/deploy/dockerfile.ts`);
    const { flags, rest } = takeFlags(sp < 0 ? '' : l.slice(sp + 1));
    let json: string[] | null = null;
    if (rest.startsWith('[')) json = JSON.parse(rest) as string[];
    const ins: Instruction = { keyword, flags, text: rest, json, line };
    if (keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!m) throw new Error(`Dockerfile:${line}: bad FROM`);
      stages.push({ from: m[1]!, name: m[2] ?? String(stages.length), instructions: [] });
    } else if (stages.length === 0) {
      if (keyword !== 'ARG') throw new Error(`Dockerfile:${line}: only ARG may come before FROM`);
      const [k, v] = splitAssign(rest);
      globalArgs.set(k, v ?? '');
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

function splitAssign(s: string): [string, string | undefined] {
  const eq = s.indexOf('=');
  if (eq < 0) return [s.trim(), undefined];
  return [s.slice(0, eq).trim(), unquote(s.slice(eq + 1).trim())];
}

function unquote(s: string): string {
  return /^".*"$|^'.*'$/.test(s) ? s.slice(1, -1) : s;
}

/** `${VAR}` / `$VAR` substitution as Docker does it in FROM, ENV, WORKDIR and COPY. */
export function substitute(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, def: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    const v = vars.get(name);
    return v !== undefined && v !== '' ? v : def ?? '';
  });
}

/** ENV assignments of one instruction (`K=V K2="V 2"`, or the legacy `K V`). */
function envAssignments(text: string): Array<[string, string]> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(text)) {
    const sp = text.indexOf(' ');
    return [[text.slice(0, sp), text.slice(sp + 1)]];
  }
  const out: Array<[string, string]> = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (const m of text.matchAll(re)) out.push([m[1]!, unquote(m[2]!)]);
  return out;
}

/** What a stage leaves in its image: the config Docker records with it. */
export interface ImageConfig {
  from: string;
  env: Map<string, string>;
  workdir: string;
  user: string | null;
  entrypoint: string[];
  cmd: string[];
  healthcheck: { flags: Map<string, string>; test: string[] } | null;
  volumes: string[];
  expose: string[];
}

/** The config of `stage` (the last one by default) after all its instructions. */
export function imageConfig(df: Dockerfile, stageName?: string): ImageConfig {
  const stage = stageName === undefined ? df.stages[df.stages.length - 1]! : df.stages.find((s) => s.name === stageName);
  if (!stage) throw new Error(`no stage ${stageName}`);
  const vars = new Map(df.globalArgs);
  const cfg: ImageConfig = { from: substitute(stage.from, vars), env: new Map(), workdir: '/', user: null, entrypoint: [], cmd: [], healthcheck: null, volumes: [], expose: [] };
  for (const ins of stage.instructions) {
    const all = new Map([...vars, ...cfg.env]);
    switch (ins.keyword) {
      case 'ENV':
        for (const [k, v] of envAssignments(ins.text)) cfg.env.set(k, substitute(v, all));
        break;
      case 'WORKDIR':
        cfg.workdir = posix.resolve(cfg.workdir, substitute(ins.text, all));
        break;
      case 'USER':
        cfg.user = substitute(ins.text, all);
        break;
      case 'ENTRYPOINT':
        cfg.entrypoint = ins.json ?? ['/bin/sh', '-c', ins.text];
        break;
      case 'CMD':
        cfg.cmd = ins.json ?? ['/bin/sh', '-c', ins.text];
        break;
      case 'VOLUME':
        cfg.volumes.push(...(ins.json ?? ins.text.split(' ')));
        break;
      case 'EXPOSE':
        cfg.expose.push(...ins.text.split(' '));
        break;
      case 'HEALTHCHECK': {
        const m = /^CMD\s+(.*)$/.exec(ins.text);
        if (!m) throw new Error(`Dockerfile:${ins.line}: HEALTHCHECK must be HEALTHCHECK [options] CMD …`);
        const cmd = m[1]!.trim();
        cfg.healthcheck = { flags: ins.flags, test: cmd.startsWith('[') ? (JSON.parse(cmd) as string[]) : ['/bin/sh', '-c', cmd] };
        break;
      }
      case 'ARG': {
        const [k, v] = splitAssign(ins.text);
        if (!vars.has(k) || v !== undefined) vars.set(k, v ?? vars.get(k) ?? '');
        break;
      }
      default:
        break;
    }
  }
  return cfg;
}

/** One step carried out (or left out) by {@link buildNatively}. */
export interface StepReport {
  stage: string;
  line: number;
  instruction: string;
  /** Why it was not run natively, or null when it was. */
  skipped: string | null;
  /** False for instructions that only set the image's config (CMD, HEALTHCHECK, …): see imageConfig(). */
  applied: boolean;
  ms: number;
}

/** Options of {@link buildNatively}. */
export interface NativeBuildOptions {
  /** The build context (already filtered by .dockerignore). */
  context: string;
  /** Each stage's `/` becomes `<root>/<stage name>`. */
  root: string;
  /** Returns why a RUN command cannot run here (e.g. it installs system packages), or null to run it. */
  skipRun: (command: string) => string | null;
  /** Environment of RUN steps, under the stage's ARG and ENV values. */
  env: NodeJS.ProcessEnv;
  /** Most time one RUN step may take. */
  runTimeoutMs: number;
  /**
   * The host user standing for the image's USER: `COPY --chown` hands files to it. Null
   * when the test is not root (then `--chown` is reported, not applied).
   */
  standInUser: { uid: number; gid: number } | null;
}

/** `<root>/<stage>` + a container path. */
export function stageRoot(options: Pick<NativeBuildOptions, 'root'>, stage: string): string {
  return join(options.root, stage);
}

function runShell(command: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer): void => {
      out = (out + d.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`RUN ${command}\nexited ${code ?? signal} in ${cwd}; last output:\n${out}`));
    });
  });
}

/** Copies `src` (file or folder) as Docker's COPY does: a folder's contents go into `dest`. */
function copyInto(src: string, dest: string, destIsDir: boolean): void {
  if (!existsSync(src)) throw new Error(`COPY source ${src} does not exist (left out of the context by .dockerignore?)`);
  if (statSync(src).isDirectory()) {
    mkdirSync(dest, { recursive: true });
    for (const name of readdirSync(src)) cpSync(join(src, name), join(dest, name), { recursive: true, verbatimSymlinks: true });
  } else {
    const target = destIsDir ? join(dest, basename(src)) : dest;
    mkdirSync(destIsDir ? dest : join(target, '..'), { recursive: true });
    cpSync(src, target, { verbatimSymlinks: true });
  }
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid);
}

/**
 * Runs every stage's WORKDIR, COPY, ENV and RUN steps natively, in order. RUN steps run
 * with `/bin/sh -c` (as Docker's shell form does) in the stage's WORKDIR, as the test's
 * user (root, as a build stage runs). `--chown` hands files to `standInUser`, which the
 * caller then runs the image as (USER); `--chmod` is applied.
 */
export async function buildNatively(df: Dockerfile, options: NativeBuildOptions): Promise<StepReport[]> {
  const reports: StepReport[] = [];
  for (const stage of df.stages) {
    const root = stageRoot(options, stage.name);
    mkdirSync(root, { recursive: true });
    const vars = new Map(df.globalArgs);
    const env = new Map<string, string>();
    let workdir = '/';
    const host = (p: string): string => join(root, posix.resolve(workdir, p));
    for (const ins of stage.instructions) {
      const t0 = Date.now();
      const all = new Map([...vars, ...env]);
      let skipped: string | null = null;
      switch (ins.keyword) {
        case 'ARG': {
          const [k, v] = splitAssign(ins.text);
          vars.set(k, v ?? vars.get(k) ?? '');
          break;
        }
        case 'ENV':
          for (const [k, v] of envAssignments(ins.text)) env.set(k, substitute(v, all));
          break;
        case 'WORKDIR':
          workdir = posix.resolve(workdir, substitute(ins.text, all));
          mkdirSync(host('.'), { recursive: true });
          break;
        case 'COPY': {
          const parts = (ins.json ?? ins.text.split(' ')).map((p) => substitute(p, all));
          const dest = parts.pop()!;
          const from = ins.flags.get('from');
          const srcRoot = from === undefined ? options.context : stageRoot(options, from);
          if (from !== undefined && !df.stages.some((s) => s.name === from)) throw new Error(`Dockerfile:${ins.line}: COPY --from=${from}: no such stage`);
          const destIsDir = dest.endsWith('/') || parts.length > 1;
          for (const src of parts) {
            if (/[*?]/.test(src)) throw new Error(`Dockerfile:${ins.line}: COPY wildcards are not understood by test/deploy/dockerfile.ts`);
            const s = from === undefined ? join(srcRoot, src) : join(srcRoot, posix.resolve('/', src));
            copyInto(s, host(dest), destIsDir);
            const mode = ins.flags.get('chmod');
            if (mode !== undefined) chmodSync(destIsDir ? join(host(dest), basename(src)) : host(dest), parseInt(mode, 8));
          }
          const chown = ins.flags.get('chown');
          if (chown !== undefined) {
            const u = options.standInUser;
            if (u === null) skipped = `--chown=${chown} not applied (needs root)`;
            else for (const src of parts) chownTree(destIsDir ? join(host(dest), basename(src)) : host(dest), u.uid, u.gid);
          }
          break;
        }
        case 'RUN': {
          if (ins.json) throw new Error(`Dockerfile:${ins.line}: RUN in exec form is not understood by test/deploy/dockerfile.ts`);
          skipped = options.skipRun(ins.text);
          if (skipped === null) {
            await runShell(ins.text, host('.'), { ...options.env, ...Object.fromEntries(vars), ...Object.fromEntries(env) }, options.runTimeoutMs);
          }
          break;
        }
        case 'USER':
          if (options.standInUser === null) skipped = `runs as the test's user here, not as "${ins.text}" (needs root)`;
          break;
        default:
          break; // image config only: see imageConfig()
      }
      const flags = [...ins.flags].map(([k, v]) => `--${k}=${v} `).join('');
      const applied = ['ARG', 'ENV', 'WORKDIR', 'COPY', 'RUN', 'USER'].includes(ins.keyword);
      reports.push({ stage: stage.name, line: ins.line, instruction: `${ins.keyword} ${flags}${ins.text}`.slice(0, 160), skipped, applied, ms: Date.now() - t0 });
    }
  }
  return reports;
}
