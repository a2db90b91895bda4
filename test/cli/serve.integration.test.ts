import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import Database from 'better-sqlite3';
import { startZen, runZen } from '../helpers/process.js';
import { selfSignedCert, tempDir, TEST_JWT_SECRET, TEST_CHANNEL_SECRET } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { withSchema } from '../helpers/pg.js';
import { waitFor } from '../helpers/wait.js';

const COMBINED_RE = /^(\S+) - (\S+) \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/;

function sqliteRows(file: string): { servers: Array<Record<string, unknown>>; sessions: Array<Record<string, unknown>> } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      servers: db.prepare('SELECT * FROM servers ORDER BY started_at').all() as Array<Record<string, unknown>>,
      sessions: db.prepare('SELECT * FROM sessions ORDER BY connected_at').all() as Array<Record<string, unknown>>
    };
  } finally {
    db.close();
  }
}

describe('zenconn serve (a real process)', () => {
  test('serves the folder, accepts a session, and after SIGTERM the database and access log hold it all', async () => {
    const dir = tempDir();
    const db = join(dir, 'z.db');
    const log = join(dir, 'access.log');
    const zen = await startZen(['serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', `sqlite:${db}`, '--access-log', log, '--spool-dir', join(dir, 'spool')]);
    const page = await fetch(`http://127.0.0.1:${zen.port}/`, { headers: { 'user-agent': 'test-agent/1.0', referer: 'http://ref.example/' } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /zenconn test/);
    assert.equal((await fetch(`http://127.0.0.1:${zen.port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${zen.port}/readyz`)).status, 200);

    const c = await TestClient.connect(zen.port, { path: `/?access_token=${await makeToken('x', [], { secret: 'unused-secret-0123456789abcdefghij' })}` }).catch((e: { status?: number }) => e);
    assert.equal((c as { status?: number }).status, 401, 'a token without a configured secret is refused');
    const client = await TestClient.connect(zen.port, { headers: { 'user-agent': 'ws-agent/2.0' } });
    await client.subscribe('news');
    client.send({ type: 'broadcast', channel: 'news', data: 'hello' });
    await client.nextOf('received');
    const closed = client.closed();
    assert.equal(await zen.stop('SIGTERM'), 0);
    assert.equal(await closed, 1001);

    const { servers, sessions } = sqliteRows(db);
    assert.equal(servers.length, 1);
    assert.equal(servers[0]!.role, 'standalone');
    assert.notEqual(servers[0]!.stopped_at, null);
    const s = sessions.find((r) => r.id === client.sessionId)!;
    assert.ok(s, 'the session row exists with the accepted id');
    assert.equal(s.server_id, servers[0]!.id);
    assert.equal(s.close_code, 1001);
    assert.notEqual(s.disconnected_at, null);
    assert.equal(s.protocol, 'json');
    assert.equal(s.user_agent, 'ws-agent/2.0');
    assert.equal(s.messages_in, 2);
    assert.equal(s.messages_out, 3);
    assert.ok(Number(s.bytes_in) > 50 && Number(s.bytes_out) > 50);

    const lines = readFileSync(log, 'utf8').trim().split('\n');
    for (const l of lines) assert.match(l, COMBINED_RE, l);
    const get = lines.map((l) => COMBINED_RE.exec(l)!).find((m) => m[4] === 'GET / HTTP/1.1' && m[5] === '200')!;
    assert.ok(get);
    assert.equal(get[1], '127.0.0.1');
    assert.equal(get[7], 'http://ref.example/');
    assert.equal(get[8], 'test-agent/1.0');
    const refused = lines.find((l) => / 401 /.test(l))!;
    assert.match(refused, /access_token=\*\*\*/);
    const ws = lines.map((l) => COMBINED_RE.exec(l)!).find((m) => m[5] === '101')!;
    assert.equal(ws[4], 'GET / HTTP/1.1');
    assert.equal(Number(ws[6]), Number(s.bytes_out));
  });

  test('SIGKILL, then a restart closes out the dead server and its sessions with 1006', async () => {
    const dir = tempDir();
    const db = join(dir, 'z.db');
    const args = ['serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', `sqlite:${db}`, '--access-log', 'off', '--spool-dir', join(dir, 'spool'), '--stale-server-ms', '1000', '--server-heartbeat-ms', '200'];
    const first = await startZen(args);
    const client = await TestClient.connect(first.port);
    await waitFor("the session row's batch", () => sqliteRows(db).sessions.some((r) => r.id === client.sessionId));
    assert.equal(await first.stop('SIGKILL'), 'SIGKILL');
    // The restart closes out a server whose last heartbeat is older than --stale-server-ms.
    await waitFor('the dead server to be stale', () => Date.now() - Date.parse(String(sqliteRows(db).servers[0]!.last_seen_at)) > 1000 + 20, 10_000, 50);
    const second = await startZen(args);
    const { servers, sessions } = sqliteRows(db);
    const dead = servers[0]!;
    assert.notEqual(dead.stopped_at, null);
    const s = sessions.find((r) => r.id === client.sessionId)!;
    assert.equal(s.close_code, 1006);
    assert.notEqual(s.disconnected_at, null);
    assert.equal(servers[1]!.stopped_at, null);
    client.ws.terminate();
    assert.equal(await second.stop(), 0);
  });

  test('PostgreSQL: server and session rows, linked, completed at SIGTERM', async () => {
    const schema = await withSchema();
    try {
      const dir = tempDir();
      const zen = await startZen(['serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', schema.url, '--access-log', 'off', '--spool-dir', join(dir, 'spool'), '--jwt-secret', TEST_JWT_SECRET]);
      const client = await TestClient.connect(zen.port, { protocol: 'bin', token: await makeToken('alice') });
      assert.equal(await zen.stop(), 0);
      const servers = await schema.query<{ id: string; stopped_at: Date | null; role: string }>('SELECT id, stopped_at, role FROM servers');
      const sessions = await schema.query<{ server_id: string; user_id: string; protocol: string; close_code: number }>('SELECT * FROM sessions WHERE id = $1', [client.sessionId]);
      assert.equal(servers.length, 1);
      assert.notEqual(servers[0]!.stopped_at, null);
      assert.equal(sessions[0]!.server_id, servers[0]!.id);
      assert.equal(sessions[0]!.user_id, 'alice');
      assert.equal(sessions[0]!.protocol, 'bin');
      assert.equal(sessions[0]!.close_code, 1001);
    } finally {
      await schema.drop();
    }
  });

  test('TLS: HTTPS and WSS on one port; SIGHUP reloads the certificate without dropping sessions', async () => {
    const dir = tempDir();
    const { cert, key } = selfSignedCert(dir, 'first.test');
    const mkcert = (cn: string): void => void selfSignedCert(dir, cn);
    const zen = await startZen(['serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', `sqlite:${join(dir, 'z.db')}`, '--access-log', 'off', '--spool-dir', join(dir, 'spool'), '--tls-cert', cert, '--tls-key', key]);
    assert.match(zen.stdout(), /listening on https:/);
    const peerCN = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: zen.port, path: '/healthz', rejectUnauthorized: false, agent: false }, (res) => {
          const cn = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN;
          res.resume();
          res.on('end', () => resolve(String(cn)));
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal(await peerCN(), 'first.test');
    const client = await TestClient.connect(zen.port, { tls: true });
    mkcert('second.test');
    zen.child.kill('SIGHUP');
    let cn = '';
    await waitFor('the reloaded certificate', async () => (cn = await peerCN()) === 'second.test');
    assert.equal(cn, 'second.test');
    assert.equal((await client.subscribe('still-here')).type, 'subscribed');
    assert.equal(await zen.stop(), 0);
  });

  test('SIGUSR1 reopens the access log file after a rename', async () => {
    const dir = tempDir();
    const log = join(dir, 'access.log');
    const zen = await startZen(['serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', `sqlite:${join(dir, 'z.db')}`, '--access-log', log, '--spool-dir', join(dir, 'spool')]);
    await (await fetch(`http://127.0.0.1:${zen.port}/before`)).text();
    await waitFor('the line of /before', () => existsSync(log) && readFileSync(log, 'utf8').includes('GET /before'));
    renameSync(log, log + '.1');
    zen.child.kill('SIGUSR1');
    await waitFor('the reopened access log', () => existsSync(log));
    await (await fetch(`http://127.0.0.1:${zen.port}/after`)).text();
    assert.equal(await zen.stop(), 0);
    assert.match(readFileSync(log + '.1', 'utf8'), /GET \/before/);
    assert.doesNotMatch(readFileSync(log + '.1', 'utf8'), /GET \/after/);
    assert.match(readFileSync(log, 'utf8'), /GET \/after/);
  });

  test('zenconn sign prints the token a private channel accepts', async () => {
    const r = await runZen(['sign', '--session', '0190a8b2-0000-7000-8000-000000000000', '--channel', 'private.invoices', '--channel-secret', TEST_CHANNEL_SECRET]);
    assert.equal(r.code, 0);
    assert.match(r.stdout.trim(), /^[0-9a-f]{64}$/);
    const missing = await runZen(['sign', '--session', 'x']);
    assert.equal(missing.code, 2);
  });
});

