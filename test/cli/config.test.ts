import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { loadConfig, parseArgv } from '../../src/config/load.js';
import { runZen } from '../helpers/process.js';
import { tempDir } from '../helpers/server.js';

describe('configuration', () => {
  test('precedence is flag > env > file > default', () => {
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ port: 1111, host: '127.0.0.2', logLevel: 'warn', maxPayloadBytes: 999 }));
    const flags = parseArgv(['serve', '--config', file, '--port', '3333']).flags;
    const c = loadConfig(flags, { ZENCONN_PORT: '2222', ZENCONN_HOST: '127.0.0.3' });
    assert.equal(c.port, 3333);
    assert.equal(c.host, '127.0.0.3');
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.maxPayloadBytes, 999);
    assert.equal(c.pingIntervalMs, 25000);
    assert.equal(Object.isFrozen(c), true);
  });

  test('booleans and lists parse from flags and env', () => {
    assert.equal(loadConfig(parseArgv(['serve', '--no-anonymous']).flags, {}).anonymous, false);
    assert.equal(loadConfig(new Map(), { ZENCONN_ANONYMOUS: 'false' }).anonymous, false);
    assert.deepEqual(loadConfig(new Map(), { ZENCONN_ALLOWED_ORIGINS: 'https://a, https://b' }).allowedOrigins, ['https://a', 'https://b']);
  });

  test('limits are checked at their edges', () => {
    assert.equal(loadConfig(new Map([['port', '65535']]), {}).port, 65535);
    assert.throws(() => loadConfig(new Map([['port', '65536']]), {}), /--port: must be at most 65535/);
    assert.equal(loadConfig(new Map([['max-payload-bytes', '1']]), {}).maxPayloadBytes, 1);
    assert.throws(() => loadConfig(new Map([['max-payload-bytes', '0']]), {}), /--max-payload-bytes: must be at least 1/);
    assert.throws(() => loadConfig(new Map([['port', 'abc']]), {}), /expected an integer/);
  });
});

describe('zenconn CLI', () => {
  test('--version and --help', async () => {
    const v = await runZen(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
    const h = await runZen(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /--max-payload-bytes/);
    assert.match(h.stdout, /ZENCONN_DATABASE/);
  });

  test('bad values exit 2 with one line naming the option, before binding the port', async () => {
    const dir = tempDir();
    const conf = join(dir, 'bad.json');
    writeFileSync(conf, JSON.stringify({ port: 0, colour: 'blue' }));
    // A port we hold: if the server bound it first we would see EADDRINUSE instead.
    const holder = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    const held = (holder.address() as { port: number }).port;
    const cases: Array<[string[], RegExp]> = [
      [['serve', '--port', '70000'], /--port: must be at most 65535/],
      [['serve', '--config', conf], /unknown option "colour"/],
      [['serve', '--port', String(held), '--tls-cert', join(dir, 'missing.pem'), '--tls-key', join(dir, 'missing.key')], /--tls-cert: cannot read/],
      [['serve', '--port', String(held), '--database', 'mysql://x'], /--database/],
      [['serve', '--port', String(held), '--access-log-format', '$remote_addr $nope'], /\$nope/],
      [['serve', '--bogus-flag', '1'], /--bogus-flag: unknown option/]
    ];
    for (const [args, re] of cases) {
      const r = await runZen(args, { env: { ZENCONN_DATABASE: `sqlite:${join(dir, 'x.db')}`, ZENCONN_ACCESS_LOG: 'off' } });
      assert.equal(r.code, 2, `${args.join(' ')} → ${r.code} ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    holder.close();
  });

  test('an unreachable database exits non-zero with a clear message', async () => {
    const r = await runZen(['serve', '--port', '0', '--database', 'postgres://postgres@127.0.0.1:1/test', '--access-log', 'off']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /database unreachable/);
  });
});
