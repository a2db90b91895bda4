import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { Admission } from '../../src/http/admission.js';
import { startServer } from '../helpers/server.js';
import { TestClient, upgradeStatus } from '../helpers/client.js';
import { waitFor } from '../helpers/wait.js';
import { makeToken } from '../helpers/tokens.js';


/** A raw socket and everything it received until it closed. */
function rawSocket(port: number): { socket: Socket; received: () => string; closed: () => boolean } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  return { socket, received: () => text, closed: () => closed };
}

describe('flood limits', () => {
  test('--max-connections: the cap is accepted, one more connection gets 503 (upgrade and plain request), counted', async () => {
    const srv = await startServer({ 'max-connections': '3' });
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const r = await upgradeStatus(srv.port);
        assert.equal(r.status, 101, `connection ${i + 1} of 3`);
        clients.push(r.client!);
      }
      assert.equal((await upgradeStatus(srv.port)).status, 503);
      await waitFor('the refused connection closed', () => srv.node.admission.connections === 3);
      const http = await fetch(`http://127.0.0.1:${srv.port}/healthz`);
      assert.equal(http.status, 503);
      assert.equal(http.headers.get('connection'), 'close');
      assert.equal(srv.node.admission.refused.maxConnections, 2);
      clients.pop()!.ws.close();
      await waitFor('a place freed', () => srv.node.admission.connections < 3);
      assert.equal((await upgradeStatus(srv.port)).status, 101, 'a place freed is taken again');
    } finally {
      for (const c of clients) c.ws.terminate();
      await srv.stop();
    }
  });

  test('--max-connections-per-ip: per client address behind the trusted proxy; one more from that address gets 429', async () => {
    const srv = await startServer({ 'max-connections-per-ip': '2', 'trust-proxy': 'loopback' });
    const clients: TestClient[] = [];
    const from = (addr: string): Record<string, string> => ({ 'x-forwarded-for': addr });
    try {
      for (let i = 0; i < 2; i++) {
        const r = await upgradeStatus(srv.port, from('203.0.113.7'));
        assert.equal(r.status, 101);
        clients.push(r.client!);
      }
      assert.equal((await upgradeStatus(srv.port, from('203.0.113.7'))).status, 429);
      // A spoofed leftmost entry changes nothing: the proxy's entry is the address.
      assert.equal((await upgradeStatus(srv.port, from('198.51.100.1, 203.0.113.7'))).status, 429);
      const other = await upgradeStatus(srv.port, from('203.0.113.8'));
      assert.equal(other.status, 101, 'another address is not held back');
      clients.push(other.client!);
      assert.equal(srv.node.admission.refused.maxConnectionsPerIp, 2);
      clients.shift()!.ws.close();
      await waitFor('the address is under its cap again', async () => (await upgradeStatus(srv.port, from('203.0.113.7'))).status === 101);
    } finally {
      for (const c of clients) c.ws.terminate();
      await srv.stop();
    }
  });

  test('handshake rate per address: the burst is accepted, one more handshake gets 429 with Retry-After', async () => {
    // At 1/s a token comes back each second: the four handshakes must fall within one
    // second to see the edge. Each attempt uses a fresh address (behind the trusted
    // loopback proxy); an attempt that took longer proves nothing and is run again.
    const srv = await startServer({ 'handshake-rate-per-ip': '1', 'handshake-burst-per-ip': '3', 'trust-proxy': 'loopback' });
    try {
      let hit = false;
      for (let attempt = 1; attempt <= 5 && !hit; attempt++) {
        const headers = { 'x-forwarded-for': `203.0.113.${attempt}` };
        const refusedBefore = srv.node.admission.refused.handshakeRate;
        const started = performance.now();
        const statuses = await Promise.all([0, 1, 2].map(async () => {
          const r = await upgradeStatus(srv.port, headers);
          r.client?.ws.terminate();
          return r.status;
        }));
        const fourth = await upgradeStatus(srv.port, headers);
        fourth.client?.ws.terminate();
        if (performance.now() - started >= 900) continue;
        hit = true;
        assert.deepEqual(statuses, [101, 101, 101]);
        assert.equal(fourth.status, 429);
        assert.equal(srv.node.admission.refused.handshakeRate, refusedBefore + 1, 'the refusal is counted');
      }
      assert.ok(hit, 'four handshakes never fell within one second');
    } finally {
      await srv.stop();
    }
  });

  test('the handshake bucket refills at its rate, and the map of addresses stays bounded', () => {
    let now = 0;
    const a = new Admission({ maxConnections: 0, maxConnectionsPerIp: 0, handshakeRatePerIp: 2, handshakeBurstPerIp: 2, logger: pino({ level: 'silent' }), maxTrackedAddresses: 100, now: () => now });
    const socket = (): Socket => ({ on: () => undefined }) as unknown as Socket;
    assert.equal(a.admitUpgrade(socket(), 'x'), null);
    assert.equal(a.admitUpgrade(socket(), 'x'), null);
    assert.equal(a.admitUpgrade(socket(), 'x')?.status, 429);
    now += 499;
    assert.equal(a.admitUpgrade(socket(), 'x')?.status, 429, 'not yet a whole token');
    now += 1;
    assert.equal(a.admitUpgrade(socket(), 'x'), null, 'one token after 500 ms at 2/s');
    for (let i = 0; i < 1000; i++) a.admitUpgrade(socket(), `10.0.${i >> 8}.${i & 255}`);
    assert.ok(a.trackedAddresses <= 100, `${a.trackedAddresses} addresses tracked`);
  });

  test('a request body trickled slower than --http-request-timeout-ms is answered 408 and closed, and counted', async () => {
    const srv = await startServer({ 'http-headers-timeout-ms': '300', 'http-request-timeout-ms': '600' });
    const c = rawSocket(srv.port);
    const trickle = setInterval(() => c.socket.write('x'), 100);
    try {
      const token = await makeToken('alice', ['publish']);
      c.socket.write(`POST /api/broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`);
      await waitFor('the trickled request closed', () => c.closed());
      assert.match(c.received(), /^HTTP\/1\.1 408 /);
      assert.equal(srv.node.admission.refused.requestTimeout, 1);
    } finally {
      clearInterval(trickle);
      c.socket.destroy();
      await srv.stop();
    }
  });

  test('headers that never finish are cut at --http-headers-timeout-ms', async () => {
    const srv = await startServer({ 'http-headers-timeout-ms': '300', 'http-request-timeout-ms': '5000' });
    const c = rawSocket(srv.port);
    const trickle = setInterval(() => c.socket.write('X-A: b\r\n'), 100);
    try {
      c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
      await waitFor('the slow headers closed', () => c.closed());
      assert.match(c.received(), /^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(trickle);
      c.socket.destroy();
      await srv.stop();
    }
  });
});
