import { BUNDLED_PUBLIC, type ParsedArgs } from '../config/load.js';
import type { Config } from '../config/options.js';
import { ZenNode } from '../node.js';
import { configOrExit, fail } from './common.js';
import { createLogger } from '../log.js';
import { SelfAdmin } from '../cluster/self-admin.js';

/**
 * `zenconn serve`: one process serving static files and WebSocket sessions.
 * Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the TLS certificate;
 * SIGUSR1 reopens the access log file.
 */
export async function serve(args: ParsedArgs): Promise<void> {
  const config = configOrExit(args);
  const logger = createLogger(config.logLevel, { role: 'standalone' });
  // The admin API and dashboard (/api/admin/*, /admin/) see the sessions through the observer.
  const admin = new SelfAdmin();
  const node = new ZenNode({ config, logger, observer: admin.observer });
  let address;
  try {
    address = await node.start();
  } catch (err) {
    fail(err);
  }
  admin.attach(node, address!.port);
  // After start: a bad configuration stays one line on stderr.
  logger.info({ public: config.public }, staticNote(config));
  installSignals(node, config.shutdownTimeoutMs);
  const scheme = config.tlsCert ? 'https' : 'http';
  process.stdout.write(`listening on ${scheme}://${config.host}:${address!.port}\n`);
}

/** Says which folder is served at `/`, and why when it is not the one asked for. */
export function staticNote(config: Readonly<Config>): string {
  if (config.public === null) return 'static files off (--public off)';
  if (config.public === BUNDLED_PUBLIC) return `no ./public here: serving the bundled console from ${BUNDLED_PUBLIC}`;
  return `serving static files from ${config.public}`;
}

/** The signal handling shared by `serve` and a worker. */
export function installSignals(node: ZenNode, shutdownTimeoutMs: number): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    node.logger.info({ signal }, 'stopping');
    const force = setTimeout(() => {
      node.logger.error('graceful stop took too long; exiting');
      process.exit(1);
    }, shutdownTimeoutMs);
    force.unref();
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        node.logger.error({ err }, 'stop failed');
        process.exit(1);
      }
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => node.reloadTls());
  process.on('SIGUSR1', () => node.reopenLogs());
}
