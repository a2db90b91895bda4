import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { clientAddress } from '../../src/http/client-address.js';
import { compileTrust } from '../../src/config/trust-proxy.js';
import { loadConfig } from '../../src/config/load.js';
import { startServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { waitFor } from '../helpers/wait.js';

function req(xff: string | undefined): IncomingMessage {
  return { headers: xff === undefined ? {} : { 'x-forwarded-for': xff } } as unknown as IncomingMessage;
}

describe('the client address behind proxies', () => {
  test('X-Forwarded-For is walked from the right past trusted proxies only', () => {
    const loopback = compileTrust('loopback');
    // The client sent 6.6.6.6; the trusted proxy on 127.0.0.1 appended what it saw.
    assert.equal(clientAddress(req('6.6.6.6, 203.0.113.7'), '127.0.0.1', loopback), '203.0.113.7');
    assert.equal(clientAddress(req('6.6.6.6, 203.0.113.7'), '::ffff:127.0.0.1', loopback), '203.0.113.7');
    // Two trusted proxies in a row are both skipped.
    assert.equal(clientAddress(req('6.6.6.6, 203.0.113.7, 10.0.0.2'), '127.0.0.1', compileTrust('10.0.0.0/8,127.0.0.1')), '203.0.113.7');
    // A hop count: exactly that many proxies, whatever their addresses.
    assert.equal(clientAddress(req('6.6.6.6, 203.0.113.7'), '192.0.2.1', compileTrust('1')), '203.0.113.7');
    assert.equal(clientAddress(req('6.6.6.6, 203.0.113.7'), '192.0.2.1', compileTrust('2')), '6.6.6.6');
    // An untrusted peer is the client, whatever it says.
    assert.equal(clientAddress(req('6.6.6.6'), '192.0.2.1', loopback), '192.0.2.1');
    assert.equal(clientAddress(req('6.6.6.6'), '::ffff:192.0.2.1', null), '192.0.2.1');
    assert.equal(clientAddress(req(undefined), '127.0.0.1', loopback), '127.0.0.1');
    assert.equal(compileTrust('0'), null);
  });

  test('--trust-proxy takes addresses, CIDRs, named ranges or a hop count; the flag alone or true is loopback; garbage is refused', () => {
    const of = (v: string | boolean): string | null => loadConfig(new Map([['trust-proxy', v]]), {}).trustProxy;
    assert.equal(of(true), 'loopback');
    assert.equal(of('true'), 'loopback');
    assert.equal(of(false), null);
    assert.equal(of('loopback'), 'loopback');
    assert.equal(of('10.0.0.0/8,127.0.0.1'), '10.0.0.0/8,127.0.0.1');
    assert.equal(of('1'), '1');
    assert.equal(loadConfig(new Map(), {}).trustProxy, null);
    assert.equal(loadConfig(new Map(), { ZENCONN_TRUST_PROXY: 'uniquelocal' }).trustProxy, 'uniquelocal');
    assert.throws(() => of('not-an-address'), /--trust-proxy/);
    assert.throws(() => of('10.0.0.0/99'), /--trust-proxy/);
  });

  /** One upgrade from 127.0.0.1 with a spoofed leftmost entry; the address the session row, access log and audit row got. */
  async function upgradeThrough(trustProxy: string | null): Promise<{ row: string; log: string; audit: string }> {
    const flags: Record<string, string> = {};
    if (trustProxy !== null) flags['trust-proxy'] = trustProxy;
    const logPath = join(mkdtempSync(join(tmpdir(), 'zenconn-xff-')), 'access.log');
    const logged = await startServer({ ...flags, 'access-log': logPath });
    try {
      const c = await TestClient.connect(logged.port, { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' } });
      c.ws.close();
      await waitFor('the session closed on the server', () => logged.node.hub.sessions.size === 0);
      await logged.stop();
      const db = new Database(join(logged.dir, 'zenconn.db'), { readonly: true });
      const row = db.prepare('SELECT remote_addr FROM sessions WHERE id = ?').get(c.sessionId) as { remote_addr: string };
      const audit = db.prepare("SELECT payload FROM audit WHERE session_id = ? AND type = 'session.open'").get(c.sessionId) as { payload: string };
      db.close();
      const line = readFileSync(logPath, 'utf8').split('\n').find((l) => l.includes(' 101 '))!;
      return { row: row.remote_addr, log: line.split(' ')[0]!, audit: (JSON.parse(audit.payload) as { remoteAddr: string }).remoteAddr };
    } finally {
      if (logged.node.state !== 'closed') await logged.stop();
    }
  }

  test('a spoofed X-Forwarded-For through a trusted loopback proxy: the session row, access log and audit row get the address the proxy saw', async () => {
    assert.deepEqual(await upgradeThrough('loopback'), { row: '203.0.113.7', log: '203.0.113.7', audit: '203.0.113.7' });
  });

  test('with a hop count of 1, the same', async () => {
    assert.deepEqual(await upgradeThrough('1'), { row: '203.0.113.7', log: '203.0.113.7', audit: '203.0.113.7' });
  });

  test('from a peer that is not a trusted proxy, or with no --trust-proxy, the socket address', async () => {
    assert.deepEqual(await upgradeThrough('10.0.0.0/8'), { row: '127.0.0.1', log: '127.0.0.1', audit: '127.0.0.1' });
    assert.deepEqual(await upgradeThrough(null), { row: '127.0.0.1', log: '127.0.0.1', audit: '127.0.0.1' });
  });
});
