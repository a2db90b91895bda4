import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, utimesSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStaticHandler } from '../../src/http/static-files.js';
import { rawRequest, type RawResponse } from './raw-request.js';

const SECRET = 'TOP-SECRET-7f3a9c';
const OUTSIDE_SECRET = 'OUTSIDE-DIR-SECRET-51d2';
const INDEX = '<!doctype html><title>zenconn</title>\n';
const SUB_INDEX = '<!doctype html><title>sub</title>\n';
const BINARY = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff));

let tmp: string;
let root: string;
let server: Server;
let port: number;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'zenconn-static-'));
  root = join(tmp, 'public');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(root, 'noindex'));
  mkdirSync(join(root, 'evilindex'));
  mkdirSync(join(root, 'sub', '.hidden'));
  mkdirSync(join(tmp, 'outside'));
  writeFileSync(join(root, 'index.html'), INDEX);
  writeFileSync(join(root, 'sub', 'index.html'), SUB_INDEX);
  writeFileSync(join(root, 'sub', '.hidden', 'x.txt'), SECRET);
  writeFileSync(join(root, 'app.bin'), BINARY);
  writeFileSync(join(root, 'hello.txt'), 'hello world\n');
  writeFileSync(join(root, 'style.css'), 'body{}');
  writeFileSync(join(root, 'a b €.txt'), 'spaced');
  writeFileSync(join(root, '.env'), SECRET);
  // The file every traversal tries to reach, next to the root.
  writeFileSync(join(tmp, 'secret.txt'), SECRET);
  writeFileSync(join(tmp, 'outside', 'secret2.txt'), OUTSIDE_SECRET);
  writeFileSync(join(tmp, 'outside', 'index.html'), OUTSIDE_SECRET);
  symlinkSync(join(tmp, 'secret.txt'), join(root, 'link-file.txt'));
  symlinkSync(join(tmp, 'outside'), join(root, 'link-dir'));
  symlinkSync('../secret.txt', join(root, 'rel-link.txt'));
  symlinkSync(join(tmp, 'secret.txt'), join(root, 'evilindex', 'index.html'));
  // A symlink that stays inside is fine.
  symlinkSync('hello.txt', join(root, 'alias.txt'));
  const old = new Date('2024-01-02T03:04:05Z');
  utimesSync(join(root, 'hello.txt'), old, old);

  server = createServer(createStaticHandler({ root }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(tmp, { recursive: true, force: true });
});

function get(path: string, init?: RequestInit): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${path}`, { redirect: 'manual', ...init });
}

function assertNoSecret(r: RawResponse, target: string): void {
  const body = r.body.toString('latin1');
  assert.ok(!body.includes(SECRET) && !body.includes(OUTSIDE_SECRET), `${target} leaked a secret: ${body}`);
}

describe('static files: serving', () => {
  test('a file is served with its content type and length', async () => {
    const r = await get('/hello.txt');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(r.headers.get('content-length'), '12');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('content-encoding'), null);
    assert.equal(await r.text(), 'hello world\n');

    const css = await get('/style.css');
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    await css.arrayBuffer();
  });

  test('a binary file comes back byte for byte', async () => {
    const r = await get('/app.bin');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.equal(r.headers.get('content-length'), String(BINARY.length));
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), BINARY);
  });

  test('a query string is ignored for the file lookup', async () => {
    const r = await get('/hello.txt?v=3');
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'hello world\n');
  });

  // Raw requests: fetch adds `Cache-Control: no-cache` to conditional requests, which forbids a 304.
  test('If-None-Match with the ETag gets 304 without a body', async () => {
    const first = await rawRequest(port, 'GET', '/hello.txt');
    const etag = first.headers['etag'];
    assert.ok(etag);
    const r = await rawRequest(port, 'GET', '/hello.txt', [`If-None-Match: ${etag}`]);
    assert.equal(r.status, 304);
    assert.equal(r.headers['etag'], etag);
    assert.equal(r.body.length, 0);
    const changed = await rawRequest(port, 'GET', '/hello.txt', ['If-None-Match: "other"']);
    assert.equal(changed.status, 200);
    assert.equal(changed.body.toString(), 'hello world\n');
  });

  test('If-Modified-Since at or after Last-Modified gets 304', async () => {
    const first = await rawRequest(port, 'GET', '/hello.txt');
    assert.equal(first.headers['last-modified'], 'Tue, 02 Jan 2024 03:04:05 GMT');
    const r = await rawRequest(port, 'GET', '/hello.txt', ['If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT']);
    assert.equal(r.status, 304);
    assert.equal(r.body.length, 0);
    const older = await rawRequest(port, 'GET', '/hello.txt', ['If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT']);
    assert.equal(older.status, 200);
  });

  test('If-Match that fails gets 412', async () => {
    const r = await get('/hello.txt', { headers: { 'if-match': '"nope"' } });
    assert.equal(r.status, 412);
    assert.equal(await r.text(), '412 Precondition Failed\n');
  });

  test('HEAD has the headers of GET and no body', async () => {
    const r = await rawRequest(port, 'HEAD', '/app.bin');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(BINARY.length));
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.ok(r.headers['etag']);
    assert.equal(r.body.length, 0);
  });

  test('a Range gets 206 with Content-Range and just those bytes', async () => {
    const r = await get('/app.bin', { headers: { range: 'bytes=10-19' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), `bytes 10-19/${BINARY.length}`);
    assert.equal(r.headers.get('content-length'), '10');
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), BINARY.subarray(10, 20));

    const suffix = await get('/app.bin', { headers: { range: 'bytes=-5' } });
    assert.equal(suffix.status, 206);
    assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), BINARY.subarray(BINARY.length - 5));
  });

  test('an unsatisfiable Range gets 416 with Content-Range: bytes */size', async () => {
    const r = await get('/app.bin', { headers: { range: 'bytes=5000-6000' } });
    assert.equal(r.status, 416);
    assert.equal(r.headers.get('content-range'), `bytes */${BINARY.length}`);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(await r.text(), '416 Range Not Satisfiable\n');
  });

  test('a directory URL serves its index.html', async () => {
    const top = await get('/');
    assert.equal(top.status, 200);
    assert.equal(top.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await top.text(), INDEX);
    const sub = await get('/sub/');
    assert.equal(sub.status, 200);
    assert.equal(await sub.text(), SUB_INDEX);
  });

  test('a directory URL without the slash is redirected with 301 to the slash form', async () => {
    const r = await get('/sub?x=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.get('location'), '/sub/?x=1');
    await r.text();
    // Never a protocol-relative redirect.
    const double = await rawRequest(port, 'GET', '//sub');
    assert.equal(double.status, 301);
    assert.equal(double.headers['location'], '/sub/');
  });

  test('a directory without an index is 404, never a listing', async () => {
    const r = await get('/noindex/');
    assert.equal(r.status, 404);
    assert.equal(await r.text(), '404 Not Found\n');
  });

  test('a missing file is 404 with a short text body', async () => {
    const r = await get('/nope.txt');
    assert.equal(r.status, 404);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(await r.text(), '404 Not Found\n');
    const slash = await get('/hello.txt/');
    assert.equal(slash.status, 404);
    await slash.text();
  });

  test('a percent-encoded file name is decoded once', async () => {
    const r = await get('/a%20b%20%E2%82%AC.txt');
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'spaced');
  });

  test('a symlink that stays inside the root is served', async () => {
    const r = await get('/alias.txt');
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'hello world\n');
  });

  test('other methods get 405 with Allow: GET, HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await get('/hello.txt', { method, ...(method === 'POST' || method === 'PUT' ? { body: 'x' } : {}) });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get('allow'), 'GET, HEAD');
      assert.equal(await r.text(), '405 Method Not Allowed\n');
    }
  });
});

describe('static files: nothing outside the root', () => {
  const traversals = [
    '/../secret.txt',
    '/../../secret.txt',
    '/sub/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/.%2e/secret.txt',
    '/sub/%2e%2e/%2e%2e/secret.txt',
    '/..%2fsecret.txt',
    '/..%2Fsecret.txt',
    '/sub%2f..%2f..%2fsecret.txt',
    '/..\\secret.txt',
    '/sub\\..\\..\\secret.txt',
    '/..%5csecret.txt',
    '/..%5Csecret.txt',
    '/secret.txt%00.html',
    '/..%00/secret.txt',
    '/%c0%ae%c0%ae/secret.txt',
    '/%252e%252e/secret.txt',
    '//../secret.txt',
    '/./../secret.txt',
    '../secret.txt',
    'http://127.0.0.1/../secret.txt',
    '/' + 'a/'.repeat(2000) + '../secret.txt',
    '/' + 'x'.repeat(5000)
  ];
  for (const target of traversals) {
    test(`${target.length > 60 ? target.slice(0, 40) + '… (' + target.length + ' chars)' : target} is refused`, async () => {
      const r = await rawRequest(port, 'GET', target);
      assert.ok([400, 403, 404].includes(r.status), `${target}: status ${r.status}`);
      assertNoSecret(r, target);
    });
  }

  test('a NUL byte is refused', async () => {
    const r = await rawRequest(port, 'GET', '/hello.txt\0');
    assert.ok([400, 403, 404].includes(r.status), `status ${r.status}`);
    assertNoSecret(r, 'NUL');
  });

  test('the over-long path is a 400', async () => {
    const r = await rawRequest(port, 'GET', '/' + 'x'.repeat(5000));
    assert.equal(r.status, 400);
  });

  test('a symlink to a file outside the root is 404', async () => {
    for (const target of ['/link-file.txt', '/rel-link.txt']) {
      const r = await rawRequest(port, 'GET', target);
      assert.equal(r.status, 404, target);
      assertNoSecret(r, target);
    }
  });

  test('a symlink to a directory outside the root is 404, with or without the slash', async () => {
    for (const target of ['/link-dir', '/link-dir/', '/link-dir/secret2.txt', '/link-dir/index.html']) {
      const r = await rawRequest(port, 'GET', target);
      assert.equal(r.status, 404, target);
      assertNoSecret(r, target);
    }
  });

  test('an index.html that is a symlink out of the root is 404', async () => {
    const r = await rawRequest(port, 'GET', '/evilindex/');
    assert.equal(r.status, 404);
    assertNoSecret(r, '/evilindex/');
  });

  test('dotfiles and dot-directories are 404', async () => {
    for (const target of ['/.env', '/%2eenv', '/sub/.hidden/x.txt', '/sub/%2Ehidden/x.txt']) {
      const r = await rawRequest(port, 'GET', target);
      assert.equal(r.status, 404, target);
      assertNoSecret(r, target);
    }
  });

  test('a root that does not exist is refused at construction', () => {
    assert.throws(() => createStaticHandler({ root: join(tmp, 'missing') }), { code: 'ERR_CONFIG_INVALID' });
    assert.throws(() => createStaticHandler({ root, index: '../secret.txt' }), { code: 'ERR_CONFIG_INVALID' });
  });
});
