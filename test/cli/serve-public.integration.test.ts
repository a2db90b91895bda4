/**
 * `zenconn serve` and its static root, as a new user meets it: in a folder without
 * ./public (the bundled console), with a --public that is missing (an error), and with
 * --public off (no static files; sessions and the API still work).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startZen, ROOT } from '../helpers/process.js';
import { TEST_JWT_SECRET } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';

/** A fresh folder without ./public: where `npx zenconn serve` is first run. */
function emptyFolder(): string {
  return mkdtempSync(join(tmpdir(), 'zenconn-first-'));
}

const BASE = ['serve', '--port', '0', '--host', '127.0.0.1', '--access-log', 'off'];

test('in a folder without ./public, serve starts, serves the bundled console and logs which folder', async () => {
  const zen = await startZen(BASE, { cwd: emptyFolder() });
  try {
    const page = await fetch(`http://127.0.0.1:${zen.port}/`);
    assert.equal(page.status, 200);
    assert.equal(await page.text(), readFileSync(join(ROOT, 'public', 'index.html'), 'utf8'));
    assert.equal((await fetch(`http://127.0.0.1:${zen.port}/console.js`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${zen.port}/zenconn/msgpackr.js`)).status, 200);
    const note = zen
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; public?: string })
      .find((l) => l.public !== undefined);
    assert.ok(note, `a log line names the static folder; stderr: ${zen.stderr()}`);
    assert.equal(note.public, join(ROOT, 'public'));
    assert.match(note.msg!, /bundled console/);
  } finally {
    assert.equal(await zen.stop(), 0);
  }
});

test('a --public that is given and does not exist stays an error (exit 2), by flag and by env', async () => {
  await assert.rejects(startZen([...BASE, '--public', './public'], { cwd: emptyFolder() }), /exited \(2\)[\s\S]*static root "\.\/public"/);
  await assert.rejects(startZen(BASE, { cwd: emptyFolder(), env: { ZENCONN_PUBLIC: './site' } }), /exited \(2\)[\s\S]*static root "\.\/site"/);
});

test('--public off: no static files (404), while WebSocket sessions, the broadcast API and /healthz work', async () => {
  const zen = await startZen([...BASE, '--public', 'off', '--jwt-secret', TEST_JWT_SECRET], { cwd: emptyFolder() });
  try {
    const base = `http://127.0.0.1:${zen.port}`;
    for (const path of ['/', '/index.html', '/console.js', '/zenconn/msgpackr.js', '/zenconn/client.js']) assert.equal((await fetch(base + path)).status, 404, path);
    assert.equal((await fetch(base + '/healthz')).status, 200);
    assert.match(zen.stderr(), /static files off/);

    const client = await TestClient.connect(zen.port);
    const sender = await TestClient.connect(zen.port);
    await client.subscribe('news');
    await sender.subscribe('news');
    sender.send({ type: 'broadcast', channel: 'news', data: 'over the socket' });
    assert.equal((await sender.nextOf('received')).count, 1);
    assert.equal((await client.nextOf('event')).data, 'over the socket');
    const res = await fetch(base + '/api/broadcast', {
      method: 'POST',
      headers: { authorization: `Bearer ${await makeToken('ops', ['publish'])}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'news', data: 'over HTTP' })
    });
    assert.equal(res.status, 200);
    assert.equal((await client.nextOf('event')).data, 'over HTTP');
    await client.close();
    await sender.close();
  } finally {
    assert.equal(await zen.stop(), 0);
  }
});
