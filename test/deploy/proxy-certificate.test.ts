/**
 * The tls proxy's start script (deploy/nginx/40-zenconn-proxy.sh), run natively with its
 * folders moved into a scratch folder: which server block it picks, the self-signed
 * certificate it makes at first start and keeps, and a mounted certificate winning.
 * Needs /bin/sh and openssl, as the proxy image has.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';

const SCRIPT = join(ROOT, 'deploy', 'nginx', '40-zenconn-proxy.sh');
let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'zenconn-proxy-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the script as the nginx entrypoint would, its folders under `dir`. */
function runScript(dir: string, env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync('/bin/sh', [SCRIPT], {
    env: {
      PATH: process.env.PATH,
      PROXY_CONF_DIR: join(dir, 'conf.d'),
      PROXY_SNIPPETS_DIR: join(ROOT, 'deploy', 'nginx'),
      PROXY_TLS_MOUNT_DIR: join(dir, 'mount'),
      PROXY_TLS_STATE_DIR: join(dir, 'state'),
      PROXY_TLS_ACTIVE_DIR: join(dir, 'active'),
      ...env
    },
    encoding: 'utf8'
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Whether a TLS client trusting only `ca` accepts a server presenting `cert`/`key` for `servername`. */
async function handshake(cert: Buffer, key: Buffer, ca: Buffer, servername: string): Promise<boolean> {
  const server = createServer({ cert, key }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    return await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', servername, ca: [ca] }, () => {
        resolve(s.authorized);
        s.end();
      });
      s.on('error', () => resolve(false));
    });
  } finally {
    server.close();
  }
}

test('PROXY_MODE=http links the plain HTTP server block and makes no certificate', () => {
  const dir = join(scratch, 'http');
  const r = runScript(dir, { PROXY_MODE: 'http' });
  assert.equal(r.status, 0, r.out);
  assert.equal(readlinkSync(join(dir, 'conf.d', 'zenconn.conf')), join(ROOT, 'deploy', 'nginx', 'zenconn-http.conf'));
  assert.equal(existsSync(join(dir, 'state')), false);
});

test('PROXY_MODE=tls without a mounted certificate makes a self-signed one for localhost at first start, and keeps it', async () => {
  const dir = join(scratch, 'self');
  const first = runScript(dir, { PROXY_MODE: 'tls' });
  assert.equal(first.status, 0, first.out);
  assert.match(first.out, /made a self-signed certificate for DNS:localhost,IP:127\.0\.0\.1,IP:::1/);
  assert.equal(readlinkSync(join(dir, 'conf.d', 'zenconn.conf')), join(ROOT, 'deploy', 'nginx', 'zenconn-tls.conf'));
  const certPath = realpathSync(join(dir, 'active', 'tls.crt'));
  assert.equal(certPath, realpathSync(join(dir, 'state', 'tls.crt')));
  const cert = readFileSync(join(dir, 'active', 'tls.crt'));
  const key = readFileSync(join(dir, 'active', 'tls.key'));
  const x509 = new X509Certificate(cert);
  assert.equal(x509.ca, false, 'a leaf certificate: browsers refuse a CA certificate as a server certificate');
  assert.equal(x509.checkHost('localhost'), 'localhost');
  assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1');
  assert.ok(x509.checkPrivateKey(createPrivateKey(key)));
  assert.ok(await handshake(cert, key, cert, 'localhost'), 'a client that trusts it (curl --cacert) accepts it for localhost');
  assert.equal(await handshake(cert, key, cert, 'example.com'), false, 'and not for another name');

  const second = runScript(dir, { PROXY_MODE: 'tls' });
  assert.equal(second.status, 0, second.out);
  assert.match(second.out, /using the self-signed certificate made at first start/);
  assert.equal(new X509Certificate(readFileSync(join(dir, 'active', 'tls.crt'))).fingerprint256, x509.fingerprint256, 'the same certificate after a restart');
});

test('PROXY_TLS_NAMES sets the names of the self-signed certificate', () => {
  const dir = join(scratch, 'names');
  const r = runScript(dir, { PROXY_MODE: 'tls', PROXY_TLS_NAMES: 'zen.example.org, 192.0.2.7' });
  assert.equal(r.status, 0, r.out);
  const x509 = new X509Certificate(readFileSync(join(dir, 'active', 'tls.crt')));
  assert.equal(x509.checkHost('zen.example.org'), 'zen.example.org');
  assert.equal(x509.checkIP('192.0.2.7'), '192.0.2.7');
  assert.equal(x509.checkHost('localhost'), undefined);
});

test('a mounted tls.crt and tls.key win over the self-signed certificate', () => {
  const dir = join(scratch, 'mounted');
  // A pair made elsewhere (by the script itself, in another folder), then "mounted".
  const other = join(scratch, 'mounted-source');
  assert.equal(runScript(other, { PROXY_MODE: 'tls', PROXY_TLS_NAMES: 'mounted.example' }).status, 0);
  mkdirSync(join(dir, 'mount'), { recursive: true });
  cpSync(join(other, 'state', 'tls.crt'), join(dir, 'mount', 'tls.crt'));
  cpSync(join(other, 'state', 'tls.key'), join(dir, 'mount', 'tls.key'));
  // A self-signed pair from an earlier start is there too: the mounted one still wins.
  assert.equal(runScript(join(dir), { PROXY_MODE: 'tls', PROXY_TLS_MOUNT_DIR: join(dir, 'none') }).status, 0);
  const r = runScript(dir, { PROXY_MODE: 'tls' });
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /using the mounted certificate/);
  assert.equal(realpathSync(join(dir, 'active', 'tls.crt')), join(dir, 'mount', 'tls.crt'));
  assert.equal(realpathSync(join(dir, 'active', 'tls.key')), join(dir, 'mount', 'tls.key'));
  assert.equal(new X509Certificate(readFileSync(join(dir, 'active', 'tls.crt'))).checkHost('mounted.example'), 'mounted.example');
});

test('half a mounted pair, or an unknown mode, stops the proxy with one clear line', () => {
  const dir = join(scratch, 'half');
  mkdirSync(join(dir, 'mount'), { recursive: true });
  cpSync(join(scratch, 'self', 'state', 'tls.crt'), join(dir, 'mount', 'tls.crt'));
  const half = runScript(dir, { PROXY_MODE: 'tls' });
  assert.equal(half.status, 1);
  assert.match(half.out, /has only one of tls\.crt and tls\.key: mount both, or neither for a self-signed certificate/);
  const bad = runScript(join(scratch, 'bad'), { PROXY_MODE: 'https' });
  assert.equal(bad.status, 1);
  assert.match(bad.out, /PROXY_MODE must be http or tls, not "https"/);
});
