import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/options.js';
import { ZenNode, type NodeOptions } from '../../src/node.js';

/** The JWT secret test servers use. */
export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef0123456789';
/** The private-channel secret test servers use. */
export const TEST_CHANNEL_SECRET = 'channel-secret-for-tests';

/** A fresh temp folder with a public/ holding index.html. */
export function tempDir(prefix = 'zenconn-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'public'));
  writeFileSync(join(dir, 'public', 'index.html'), '<!doctype html><title>zenconn test</title>');
  return dir;
}

/** A running in-process node and its port. */
export interface TestServer {
  node: ZenNode;
  port: number;
  dir: string;
  config: Readonly<Config>;
  stop(): Promise<void>;
}

/**
 * Starts a real node on 127.0.0.1, port 0, SQLite in a temp folder (unless `database`
 * is given), access log off, test secrets. `flags` are CLI-style overrides.
 */
export async function startServer(flags: Record<string, string | boolean> = {}, extra: Partial<NodeOptions> = {}): Promise<TestServer> {
  const dir = tempDir();
  const all = new Map<string, string | boolean>(
    Object.entries({
      host: '127.0.0.1',
      port: '0',
      public: join(dir, 'public'),
      database: `sqlite:${join(dir, 'zenconn.db')}`,
      'access-log': 'off',
      'jwt-secret': TEST_JWT_SECRET,
      'channel-secret': TEST_CHANNEL_SECRET,
      'spool-dir': join(dir, 'spool'),
      'audit-journal-dir': join(dir, 'journal'),
      'log-level': 'silent',
      ...flags
    })
  );
  const config = loadConfig(all, {});
  const node = new ZenNode({ config, logger: pino({ level: config.logLevel }), ...extra });
  const address = await node.start();
  return { node, port: address!.port, dir, config, stop: () => node.stop() };
}

/**
 * Writes a self-signed certificate and its key (openssl, RSA 2048, one day) as
 * `cert.pem` and `key.pem` in `dir`, overwriting them; returns their paths.
 */
export function selfSignedCert(dir: string, cn = 'localhost'): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${cn}`], { stdio: 'ignore' });
  return { cert, key };
}
