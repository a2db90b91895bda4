/**
 * A container of the zenconn image, played by a native process: the image's ENTRYPOINT
 * and a command, run in a folder laid out like the image's WORKDIR, with only the
 * environment the container would have. Used by the compose and image-build tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { ImageConfig } from './dockerfile.js';
import { waitFor } from '../helpers/wait.js';

/** A running native "container". */
export interface NativeContainer {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | string>;
  /** Sends SIGTERM (as `docker stop` does) and resolves with the exit code, or rejects after `graceMs`. */
  stop(graceMs: number): Promise<number | string>;
}

/** Options of {@link startContainer}. */
export interface ContainerOptions {
  image: ImageConfig;
  /** The host folder standing for the image's WORKDIR. */
  appDir: string;
  /** The command after the ENTRYPOINT (the image's CMD when omitted). */
  command?: string[];
  /** The container's own environment (Compose's `environment`, `env_file`, …), over the image's ENV. */
  env?: Record<string, string>;
  /** Soft open-files limit to start with, to show that Node raises it. */
  softNofile?: number;
  /** The host user standing for the image's USER (needs root); default: the test's own. */
  user?: { uid: number; gid: number } | null;
}

/** Maps an argv item of the image to the host: `node` → this Node.js, paths under WORKDIR → `appDir`. */
export function hostArg(arg: string, image: ImageConfig, appDir: string): string {
  if (arg === 'node') return process.execPath;
  const wd = image.workdir.endsWith('/') ? image.workdir : image.workdir + '/';
  if (arg.startsWith(wd)) return join(appDir, arg.slice(wd.length));
  if (arg.startsWith('/')) throw new Error(`the image refers to ${arg}, outside its WORKDIR ${image.workdir}: not reproducible natively`);
  return arg;
}

/** The environment a container of `image` starts with: PATH and HOME, the image's ENV, then `env`. */
export function containerEnv(image: ImageConfig, appDir: string, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: appDir, ...Object.fromEntries(image.env), ...env };
}

/** Starts `ENTRYPOINT + command` natively with cwd = `appDir` (the WORKDIR). */
export function startContainer(o: ContainerOptions): NativeContainer {
  const argv = [...o.image.entrypoint, ...(o.command ?? o.image.cmd)].map((a) => hostArg(a, o.image, o.appDir));
  if (argv.length === 0) throw new Error('the image has no ENTRYPOINT or CMD');
  // `exec` keeps the pid: it is the process Docker would signal.
  const [file, args] = o.softNofile === undefined ? [argv[0]!, argv.slice(1)] : ['/bin/sh', ['-c', `ulimit -S -n ${o.softNofile} && exec "$@"`, 'sh', ...argv]];
  const child = spawn(file, args, { cwd: o.appDir, env: containerEnv(o.image, o.appDir, o.env), stdio: ['ignore', 'pipe', 'pipe'], ...(o.user ?? {}) });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-200_000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-200_000)));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(graceMs) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`did not stop within ${graceMs} ms of SIGTERM (Docker would SIGKILL it)\nstderr: ${err.slice(-3000)}`));
        }, graceMs);
      });
      try {
        return await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
    }
  };
}

/** Runs `ENTRYPOINT + command` to completion. */
export async function runContainer(o: ContainerOptions & { timeoutMs: number }): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const c = startContainer(o);
  const timer = setTimeout(() => c.child.kill('SIGKILL'), o.timeoutMs);
  const code = await c.exited;
  clearTimeout(timer);
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

/** Runs the image's HEALTHCHECK test (exec form) natively, as the container's user; resolves with its exit code. */
export async function runHealthcheck(
  image: ImageConfig,
  appDir: string,
  env: Record<string, string>,
  user: { uid: number; gid: number } | null = null,
  timeoutMs = 10_000
): Promise<{ code: number | string; output: string }> {
  if (!image.healthcheck) throw new Error('the image has no HEALTHCHECK');
  const argv = image.healthcheck.test.map((a) => hostArg(a, image, appDir));
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: appDir, env: containerEnv(image, appDir, env), stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}) });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? sig ?? -1, output });
    });
  });
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Polls GET `path` on 127.0.0.1:`port` until it answers 200; rejects with the process's
 * output when it exits first or after `timeoutMs`.
 */
export async function waitForHttp(port: number, path: string, c: NativeContainer, timeoutMs: number, hint = ''): Promise<void> {
  let exit: number | string | null = null;
  void c.exited.then((code) => (exit = code));
  let last = '';
  const output = (): string => `\nstdout: ${c.stdout().slice(-3000)}\nstderr: ${c.stderr().slice(-5000)}`;
  try {
    await waitFor(
      `${path} on port ${port}`,
      async () => {
        if (exit !== null) throw new Error(`${hint}the process exited (${exit}) before ${path} answered${output()}`);
        try {
          const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
          await res.arrayBuffer();
          if (res.status === 200) return true;
          last = `HTTP ${res.status}`;
        } catch (err) {
          last = (err as Error).message;
        }
        return false;
      },
      timeoutMs,
      200
    );
  } catch (err) {
    if (exit !== null) throw err;
    throw new Error(`${hint}${path} on port ${port} did not answer 200 within ${timeoutMs} ms (last: ${last})${output()}`);
  }
}

/** The soft and hard open-files limits of a process, from /proc. */
export function nofileLimits(pid: number): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const m = line && /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(line);
  if (!m) throw new Error(`no open-files limit for pid ${pid}`);
  const n = (s: string): number => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

/** The direct child processes of `pid`, with their command lines. */
export function childProcesses(pid: number): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const p of text.trim().split(/\s+/).filter(Boolean)) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        /* gone already */
      }
      out.push({ pid: Number(p), cmdline });
    }
  }
  return out;
}
