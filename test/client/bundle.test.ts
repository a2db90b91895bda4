/**
 * The browser bundle of the client library: under the size budget of issue #13
 * (minified and gzipped < 10240 bytes), free of Node, and served at /zenconn/client.js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/process.js';
import { startServer } from '../helpers/server.js';

interface BuildScript {
  bundleClient(): Promise<string>;
  writeClientBundle(): Promise<string>;
  BUNDLE_PATH: string;
}
const script = (await import(pathToFileURL(join(ROOT, 'scripts', 'build-client.js')).href)) as BuildScript;

test('the minified, gzipped browser bundle is under 10 KB (10240 bytes)', async () => {
  const text = await script.bundleClient();
  const gz = gzipSync(Buffer.from(text), { level: 9 }).length;
  assert.ok(text.length > 1000, `a real bundle: ${text.length} bytes`);
  assert.ok(gz < 10240, `gzip size ${gz} bytes`);
});

test('the bundle is one ES module with no Node import: no node:, no require, no ws except the guarded dynamic import', async () => {
  const text = await script.bundleClient();
  assert.doesNotMatch(text, /["']node:/);
  assert.doesNotMatch(text, /\brequire\(/);
  assert.doesNotMatch(text, /\bBuffer\b/);
  assert.doesNotMatch(text, /\bprocess\./);
  assert.deepEqual(text.match(/import\(\s*[^)]*\)/g), ['import("ws")'], 'ws only through the dynamic import taken when there is no global WebSocket');
  assert.match(text, /export\s*\{[^}]*\bconnect\b/);
});

test('zenconn serves the built bundle at /zenconn/client.js as JavaScript', async () => {
  const written = await script.writeClientBundle();
  const server = await startServer();
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/zenconn/client.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /javascript/);
    assert.equal(await res.text(), written);
    assert.equal(written, readFileSync(script.BUNDLE_PATH, 'utf8'));
  } finally {
    await server.stop();
  }
});
