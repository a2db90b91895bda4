/**
 * The agent's local control socket: a Unix socket (mode 0600) on which the agent answers
 * the same `/agent/*` routes as on its port, over HTTP. Whoever can open the file is the
 * agent's own operator, so the `admin` grant is implied; `zenconn status` and `reload`
 * use it when no `--token` is given.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import { makePrivateDir } from '../store/private-files.js';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/options.js';
import { Router } from '../http/router.js';
import { createRequestHandler } from '../http/request-handler.js';
import { RequestLog } from '../http/request-log.js';
import { LoggedResponse } from '../http/logged-response.js';
import { registerAgentRoutes } from './agent-api.js';
import type { AgentAnswer, AgentQuery } from './ipc-messages.js';

/** File name of the control socket in the data folder. */
export const CONTROL_SOCKET_NAME = 'zenconn.sock';

/**
 * Where the control socket of `config` lives: `--control-socket`, or `zenconn.sock` in
 * the data folder (the parent of `--spool-dir`, `./data` by default); null for `off`.
 */
export function controlSocketPath(config: Pick<Readonly<Config>, 'controlSocket' | 'spoolDir'>): string | null {
  if (config.controlSocket === 'off') return null;
  if (config.controlSocket !== null) return resolve(config.controlSocket);
  return join(dirname(resolve(config.spoolDir)), CONTROL_SOCKET_NAME);
}

/** Whether something listens on the Unix socket `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      done(true);
    });
    s.once('error', () => done(false));
  });
}

/** A started control socket; `close()` stops it and removes its file. */
export interface ControlSocket {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Listens on `path` and answers `/agent/*` with `ask`. Creates the folder (0700) when
 * missing; a stale socket file is replaced, a live one (another agent) is an error.
 */
export async function startControlSocket(path: string, ask: (query: AgentQuery) => Promise<AgentAnswer>, logger: Logger): Promise<ControlSocket> {
  const dir = dirname(path);
  makePrivateDir(dir);
  let stale = false;
  try {
    stale = lstatSync(path).isSocket();
  } catch {
    // no file: nothing to replace
  }
  if (stale) {
    if (await listening(path)) throw new Error(`control socket ${path} is in use by another process`);
    rmSync(path, { force: true });
  }
  const router = new Router();
  registerAgentRoutes(router, null, ask);
  const handler = createRequestHandler({
    router,
    fallback: (_req, res) => {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":"not found"}');
    },
    // The socket's callers are local tools: no access-log lines, no refusals to record.
    requestLog: new RequestLog({ accessLog: { log: () => undefined }, audit: { record: () => undefined }, trustProxy: null }),
    logger
  });
  const server: Server = createHttpServer({ ServerResponse: LoggedResponse }, (req, res) => handler(req, res as LoggedResponse));
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(path, () => {
      server.off('error', fail);
      done();
    });
  });
  // The file's permission is the grant: owner only.
  chmodSync(path, 0o600);
  let closed = false;
  const removeFile = (): void => rmSync(path, { force: true });
  process.once('exit', removeFile);
  return {
    path,
    close: async () => {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      removeFile();
      process.off('exit', removeFile);
    }
  };
}
