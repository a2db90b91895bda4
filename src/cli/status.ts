import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SignJWT } from 'jose';
import type { ParsedArgs } from '../config/load.js';
import type { Config } from '../config/options.js';
import { ZenError } from '../errors.js';
import type { WorkerView } from '../cluster/registry.js';
import { existsSync } from 'node:fs';
import { controlSocketPath } from '../cluster/control-socket.js';
import { configOrExit, fail, stringFlag } from './common.js';
import { commandFlags } from './command-help.js';
import { clusterNodes, formatCluster } from './status-cluster.js';

/** The flags of `status` and `reload` besides the config options. */
const FLAGS = commandFlags('status');

/** The agent's answer to `GET /agent/workers`. */
interface WorkersAnswer {
  agent: { id: string; pid: number; state: string; uptimeMs: number; workers: number; rssBytes?: number };
  workers: WorkerView[];
  totals: { workers: number; sessions: number; messagesInPerSec: number; messagesOutPerSec: number; rssBytes: number };
}

/**
 * `zenconn status [--json] [--token JWT]`: asks the agent for its workers and prints them
 * as a table: slot, pid, state, uptime, sessions, messages/s in and out, memory,
 * event-loop lag, and the totals. `--json` prints the answer as it is.
 *
 * The agent is found from the same options, env vars and config file as the agent's: see
 * {@link reach}.
 */
export async function status(args: ParsedArgs): Promise<void> {
  const config = configOrExit(args, FLAGS);
  if (args.flags.get('cluster') === true) {
    // Every live node of the shared database (PostgreSQL), read from the database itself.
    let nodes;
    try {
      nodes = await clusterNodes(config, stringFlag(args, 'token') ?? (config.jwtSecret ? await mintAdminToken(config.jwtSecret, 'zenconn-status') : null));
    } catch (err) {
      fail(err);
    }
    process.stdout.write(args.flags.get('json') === true ? JSON.stringify({ nodes }) + '\n' : formatCluster(nodes));
    return;
  }
  const res = await reach(config, args, 'GET', '/agent/workers');
  if (res.status !== 200) fail(new Error(`GET /agent/workers answered ${res.status}: ${res.body}`));
  if (args.flags.get('json') === true) {
    process.stdout.write(res.body + '\n');
    return;
  }
  process.stdout.write(formatStatus(JSON.parse(res.body) as WorkersAnswer));
}

/**
 * `zenconn reload [--token JWT]`: rolling restart of the agent's workers, as SIGHUP does
 * (`POST /agent/reload`). The agent is found as by `status` ({@link reach}).
 */
export async function reload(args: ParsedArgs): Promise<void> {
  const config = configOrExit(args, FLAGS);
  const res = await reach(config, args, 'POST', '/agent/reload');
  if (res.status !== 202) fail(new Error(`POST /agent/reload answered ${res.status}: ${res.body}`));
  const body = JSON.parse(res.body) as { workers: number };
  process.stdout.write(`rolling restart of ${body.workers} worker(s) started\n`);
}

/**
 * Asks the agent (every `/agent/*` route needs the `admin` grant):
 * - with `--token`: on its port (`--host`/`--port`; host 0.0.0.0 means this machine);
 * - else over its control socket, when its file exists (`--control-socket`, by default
 *   `zenconn.sock` beside `--spool-dir`): the socket's permission is the grant;
 * - else on its port with a one-minute admin token minted with `--jwt-secret`, if set.
 */
async function reach(config: Readonly<Config>, args: ParsedArgs, method: string, path: string): Promise<{ status: number; body: string }> {
  let token = stringFlag(args, 'token');
  const socket = controlSocketPath(config);
  const useSocket = token === null && socket !== null && existsSync(socket);
  if (token === null && !useSocket) {
    if (!config.jwtSecret) {
      fail(new ZenError('ERR_CONFIG_INVALID', `${args.command ?? 'status'}: no control socket at ${socket ?? '(off)'}; give --token (a JWT with the admin grant) or --jwt-secret`));
    }
    token = await mintAdminToken(config.jwtSecret!, `zenconn-${args.command ?? 'status'}`);
  }
  try {
    return await call(config, method, path, token, useSocket ? socket : null);
  } catch (err) {
    fail(new Error(`cannot reach the agent at ${useSocket ? socket! : baseUrl(config)}: ${(err as Error).message}`));
  }
}

/** A one-minute HS256 token with the `admin` grant. */
function mintAdminToken(secret: string, subject: string): Promise<string> {
  return new SignJWT({ grants: ['admin'] }).setProtectedHeader({ alg: 'HS256' }).setSubject(subject).setIssuedAt().setExpirationTime('1m').sign(new TextEncoder().encode(secret));
}

function baseUrl(config: Readonly<Config>): string {
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '[::1]' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `${config.tlsCert ? 'https' : 'http'}://${host}:${config.port}`;
}

/** One request to the agent: over the Unix socket `socketPath` (plain HTTP), else on its port. */
function call(config: Readonly<Config>, method: string, path: string, token: string | null, socketPath: string | null): Promise<{ status: number; body: string }> {
  const url = new URL(path, socketPath === null ? baseUrl(config) : 'http://localhost');
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      // The agent's own certificate may be self-signed or name another host: this talks to a known port.
      { method, headers: token ? { authorization: `Bearer ${token}` } : {}, rejectUnauthorized: false, timeout: 10000, ...(socketPath === null ? {} : { socketPath }) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The table `zenconn status` prints. */
export function formatStatus(a: WorkersAnswer): string {
  const lines = [`agent ${a.agent.id}  pid ${a.agent.pid}  ${a.agent.state}  up ${duration(a.agent.uptimeMs)}  workers ${a.workers.length}/${a.agent.workers || 1}`, ''];
  const rows: string[][] = [['SLOT', 'PID', 'STATE', 'UPTIME', 'SESSIONS', 'IN/S', 'OUT/S', 'RSS', 'HEAP', 'LAG']];
  for (const w of a.workers) {
    rows.push([String(w.slot), String(w.pid), w.state, duration(w.uptimeMs), String(w.sessions), String(w.messagesInPerSec), String(w.messagesOutPerSec), mib(w.rssBytes), mib(w.heapUsedBytes), `${w.loopLagMs.toFixed(1)} ms`]);
  }
  const t = a.totals;
  rows.push(['total', '', '', '', String(t.sessions), String(t.messagesInPerSec), String(t.messagesOutPerSec), mib(t.rssBytes), '', '']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) lines.push(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  return lines.join('\n') + '\n';
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
