import type { ParsedArgs } from '../config/load.js';
import type { Config } from '../config/options.js';
import { ZenNode } from '../node.js';
import { TokenVerifier } from '../auth/tokens.js';
import { Agent } from '../cluster/agent.js';
import { Registry } from '../cluster/registry.js';
import { StatsCollector } from '../cluster/stats.js';
import { registerAgentRoutes } from '../cluster/agent-api.js';
import { agentForceExitMs } from '../cluster/supervisor.js';
import { controlSocketPath, startControlSocket } from '../cluster/control-socket.js';
import { answerAgentQuery, workersView } from '../cluster/agent-answers.js';
import type { AdminQuery, AgentAnswer, AgentQuery } from '../cluster/ipc-messages.js';
import { answerAdminQuery } from '../cluster/admin-answers.js';
import { registerAdminRoutes } from '../cluster/admin-api.js';
import { closeByOperator } from '../cluster/self-admin.js';
import { configOrExit, fail } from './common.js';
import { createLogger } from '../log.js';
import { installSignals, staticNote } from './serve.js';

/**
 * `zenconn agent [--workers N]`: the agent owns the port and supervises N worker
 * processes that hold the sessions (see cluster/agent.ts). Every `serve` option works
 * the same. Prints `listening on http(s)://HOST:PORT` once the port answers and every
 * worker is ready.
 *
 * Signals: SIGTERM/SIGINT drain every worker and exit 0; SIGHUP restarts the workers one
 * at a time (new certificates and code are picked up); SIGUSR1 is forwarded to the
 * workers (reopen the access log).
 *
 * `--workers 0`: the agent serves the sessions itself, exactly like `serve` (SIGHUP
 * reloads the TLS certificate), with its row's role `agent`; `/agent/workers` lists the
 * agent's own process as its one worker.
 */
export async function agent(args: ParsedArgs): Promise<void> {
  const config = configOrExit(args);
  if (config.workers === 0) return serveInAgent(config);
  const logger = createLogger(config.logLevel, { role: 'agent' });
  const a = new Agent({ config, logger });
  let address;
  try {
    address = await a.start();
  } catch (err) {
    fail(err);
  }
  logger.info({ public: config.public }, staticNote(config));
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => {
      logger.error('graceful stop took too long; exiting');
      process.exit(1);
    }, agentForceExitMs(config.shutdownTimeoutMs));
    force.unref();
    a.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      }
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void a.reload());
  process.on('SIGUSR1', () => a.signalWorkers('SIGUSR1'));
  const scheme = config.tlsCert ? 'https' : 'http';
  process.stdout.write(`listening on ${scheme}://${config.host}:${address!.port}\n`);
}

/** `--workers 0`: one process, role `agent`, its own registry behind `/agent/*`. */
async function serveInAgent(config: Readonly<Config>): Promise<void> {
  const logger = createLogger(config.logLevel, { role: 'agent' });
  const registry = new Registry();
  const stats = new StatsCollector();
  const SELF = 0;
  const startedAt = Date.now();
  const node = new ZenNode({
    config,
    logger,
    role: 'agent',
    observer: {
      sessionOpened: (s) => registry.sessionOpened(SELF, { id: s.id, remoteAddr: s.init.remoteAddr, user: s.userId, protocol: s.protocol, connectedAt: s.connectedAtMs }),
      sessionClosed: (s) => {
        stats.sessionClosed(s);
        registry.sessionClosed(SELF, s.id);
      },
      subscribed: (s, channel) => registry.subscribed(SELF, s.id, channel),
      unsubscribed: (s, channel) => registry.unsubscribed(SELF, s.id, channel)
    }
  });
  registry.addWorker(SELF, 0, process.pid, startedAt);
  registry.setServerId(SELF, node.serverId);
  let address;
  try {
    address = await node.start();
  } catch (err) {
    fail(err);
  }
  registry.setState(SELF, 'ready', address!.port);
  const timer = setInterval(() => registry.setStats(SELF, stats.sample(node.hub)), 1000);
  timer.unref();
  const view = () => workersView(registry, { id: node.serverId, state: node.state, startedAt, workers: 0 });
  const admin = (query: AdminQuery): AgentAnswer => answerAdminQuery(query, registry, view, (_worker, id) => closeByOperator(node, id));
  const ask = async (query: AgentQuery): Promise<AgentAnswer> =>
    answerAgentQuery(query, registry, view, () => {
      node.reloadTls();
      return { status: 202, body: { status: 'reloading', workers: 0 } };
    });
  registerAgentRoutes(node.router, new TokenVerifier({ secret: config.jwtSecret, publicKeyFile: config.jwtPublicKey }), ask, (req, err, userId) =>
    node.recordRefusedRequest(req, err, userId)
  );
  registerAdminRoutes(node.router, {
    verifier: new TokenVerifier({ secret: config.jwtSecret, publicKeyFile: config.jwtPublicKey }),
    store: node.store,
    staleServerMs: config.staleServerMs,
    ask: async (query) => admin(query),
    onRefused: (req, err, userId) => node.recordRefusedRequest(req, err, userId)
  });
  const controlPath = controlSocketPath(config);
  if (controlPath !== null) {
    // Its file goes with the process (startControlSocket removes it on exit).
    try {
      await startControlSocket(controlPath, ask, logger);
    } catch (err) {
      await node.stop().catch(() => undefined);
      fail(err);
    }
  }
  installSignals(node, config.shutdownTimeoutMs);
  const scheme = config.tlsCert ? 'https' : 'http';
  process.stdout.write(`listening on ${scheme}://${config.host}:${address!.port}\n`);
}
