/**
 * A server under test, run as a child process: start it, learn its port from the line
 * it prints when ready, stop it. Every server the bench runs (zenconn, the reference
 * servers, anything a row needs beside them) goes through here.
 *
 * `BENCH_SERVER_LOG=FILE` appends every server's whole output to FILE as well.
 *
 * Each child gets its own process group, so stopping it also stops whatever it forked
 * (an agent's workers): SIGTERM to the group, then SIGKILL after `stopTimeoutMs`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import type { Target } from './client-protocols.js';

/** What zenconn and both reference servers print when ready. */
export const LISTENING_RE = /listening on https?:\/\/([^\s:/]+|\[[^\]]+\]):(\d+)/;

/** How to start one server process. */
export interface ServerSpec {
  /** Label in messages (default: the command's last argument that is not a flag). */
  label?: string;
  command: string;
  args: string[];
  /** Added to the bench's own environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** The ready line on stdout or stderr; group 1 = host, group 2 = port (default LISTENING_RE). */
  ready?: RegExp;
  /** Count its CPU and memory (and its children's) in the row (default true). */
  measured?: boolean;
  /** Subscribers connect to it (default true). False for a helper such as a Redis server. */
  target?: boolean;
  /** Give up waiting for the ready line after this long (default 20 s). */
  startTimeoutMs?: number;
}

/** Bytes of output kept from each child for error messages. */
const TAIL_BYTES = 4096;

/** A started server child process: its pid, its address, its output tail; `stop` ends it. */
export class ServerProcess {
  private tail = '';
  private exited = false;

  private constructor(
    readonly spec: ServerSpec,
    private readonly child: ChildProcess,
    /** Host and port from the ready line. */
    readonly address: Target
  ) {}

  /** The process's pid (the root of its tree). */
  get pid(): number {
    return this.child.pid!;
  }

  get measured(): boolean {
    return this.spec.measured ?? true;
  }

  get isTarget(): boolean {
    return this.spec.target ?? true;
  }

  /** The last lines the process printed. */
  get output(): string {
    return this.tail.trim();
  }

  /** Start the process and resolve once it printed its ready line. */
  static start(spec: ServerSpec): Promise<ServerProcess> {
    const ready = spec.ready ?? LISTENING_RE;
    const timeoutMs = spec.startTimeoutMs ?? 20_000;
    const label = spec.label ?? spec.args.filter((a) => !a.startsWith('-')).slice(-1)[0] ?? spec.command;
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true
    });
    let tail = '';
    let server: ServerProcess | undefined;
    // BENCH_SERVER_LOG=FILE: every server's whole output is appended there too (to read a run's logs afterwards).
    const logFile = process.env.BENCH_SERVER_LOG;
    const keep = (chunk: Buffer): void => {
      if (logFile !== undefined) appendFileSync(logFile, chunk);
      tail = (tail + chunk.toString()).slice(-TAIL_BYTES);
      if (server !== undefined) server.tail = tail;
    };
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (message: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        killGroup(child, 'SIGKILL');
        const output = tail.trim().split('\n').slice(-8).join('\n');
        reject(new Error(output === '' ? message : `${message}; output:\n${output}`));
      };
      const timer = setTimeout(() => fail(`${label}: no ready line in ${timeoutMs} ms`), timeoutMs);
      const scan = (chunk: Buffer): void => {
        keep(chunk);
        if (settled) return;
        const match = ready.exec(tail);
        if (match === null) return;
        settled = true;
        clearTimeout(timer);
        const host = (match[1] ?? '127.0.0.1').replace(/^\[|\]$/g, '');
        server = new ServerProcess(spec, child, { host, port: Number(match[2]) });
        server.tail = tail;
        child.once('exit', () => {
          server!.exited = true;
        });
        resolve(server);
      };
      child.stdout!.on('data', scan);
      child.stderr!.on('data', scan);
      child.once('error', (err) => fail(`${label}: ${err.message}`));
      child.once('exit', (code, signal) => fail(`${label} exited (${signal ?? `code ${code}`}) before it was ready`));
    });
  }

  /** Whether the process is still running. */
  get alive(): boolean {
    return !this.exited && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM the process group, SIGKILL it if still there after `stopTimeoutMs` (default 5 s). */
  async stop(stopTimeoutMs = 5000): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    killGroup(this.child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.child, 'SIGKILL'), stopTimeoutMs);
    await exited;
    clearTimeout(timer);
    // Whatever it forked and left behind (an agent's workers) goes too.
    killGroup(this.child, 'SIGKILL');
  }
}

/** Signal the child's own process group (it was spawned detached, so the group is its pid). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}
