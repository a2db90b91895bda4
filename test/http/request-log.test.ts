import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';
import { rawRequest } from './raw-request.js';

/** A node writing its access log to a file, and the lines written so far. */
async function loggedServer(flags: Record<string, string | boolean> = {}): Promise<{ srv: TestServer; lines: () => string[] }> {
  const path = join(mkdtempSync(join(tmpdir(), 'zenconn-request-log-')), 'access.log');
  const srv = await startServer({ 'access-log': path, ...flags });
  const lines = (): string[] => {
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      // not created yet
    }
    return text.split('\n').filter((l) => l !== '');
  };
  return { srv, lines };
}

const UPGRADE = ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'];

describe('the access log of a node', () => {
  test('a refused upgrade logs the body bytes it was answered with', async () => {
    const { srv, lines } = await loggedServer({ anonymous: false });
    try {
      const r = await rawRequest(srv.port, 'GET', '/', UPGRADE);
      assert.equal(r.status, 401);
      assert.ok(r.body.length > 0);
      await waitFor('the 401 line', () => lines().some((l) => l.includes('" 401 ')));
      const line = lines().find((l) => l.includes('" 401 '))!;
      assert.match(line, new RegExp(`" 401 ${r.body.length} "`), line);
    } finally {
      await srv.stop();
    }
  });

  test('a route that serves another file logs the path that was requested', async () => {
    const { srv, lines } = await loggedServer();
    try {
      const r = await fetch(`http://127.0.0.1:${srv.port}/zenconn/msgpackr.js`);
      assert.equal(r.status, 200);
      const size = (await r.arrayBuffer()).byteLength;
      await waitFor('the 200 line', () => lines().some((l) => l.includes('" 200 ')));
      const line = lines().find((l) => l.includes('" 200 '))!;
      assert.ok(line.includes(`"GET /zenconn/msgpackr.js HTTP/1.1" 200 ${size} `), line);
    } finally {
      await srv.stop();
    }
  });
});
