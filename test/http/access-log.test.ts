import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMBINED, compileFormat, escapeLogValue, redactUrl, type AccessLogEntry } from '../../src/http/access-log.js';
import { AccessLog } from '../../src/http/access-log-writer.js';
import { LoggedResponse, entryFromHttp } from '../../src/http/logged-response.js';
import { createStaticHandler } from '../../src/http/static-files.js';
import { waitFor } from '../helpers/wait.js';
import { rawRequest } from './raw-request.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'zenconn-access-log-'));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function entry(over: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    remoteAddr: '203.0.113.7',
    remoteUser: null,
    time: new Date(Date.UTC(2026, 10, 27, 6, 30, 46, 250)),
    method: 'GET',
    url: '/index.html',
    httpVersion: '1.1',
    status: 200,
    bodyBytesSent: 1234,
    referer: 'https://example.com/',
    userAgent: 'curl/8.5.0',
    durationMs: 12.3456,
    ...over
  };
}

function lines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

const COMBINED_RE =
  /^(\d{1,3}(?:\.\d{1,3}){3}) - (\S+) \[(\d{2})\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/;

describe('access log: lines from a real HTTP server', () => {
  let server: Server;
  let port: number;
  let log: AccessLog;
  let logPath: string;
  let logged = 0;
  const waiters: Array<() => void> = [];
  const root = () => join(tmp, 'public');

  before(async () => {
    mkdirSync(root(), { recursive: true });
    writeFileSync(join(root(), 'app.js'), 'console.log("zenconn");\n'.repeat(100));
    logPath = join(tmp, 'logs', 'nested', 'access.log');
    log = new AccessLog({ destination: logPath });
    await log.ready();
    const files = createStaticHandler({ root: root() });
    server = createServer({ ServerResponse: LoggedResponse }, (req: IncomingMessage, res: LoggedResponse) => {
      const startedAt = process.hrtime.bigint();
      const time = new Date();
      let done = false;
      const onEnd = (): void => {
        if (done) return;
        done = true;
        log.log(entryFromHttp(req, res, startedAt, time));
        logged++;
        for (const w of waiters.splice(0)) w();
      };
      res.on('finish', onEnd);
      res.on('close', onEnd);
      if (req.url === '/hello') {
        res.end('hello world');
      } else if (req.url?.startsWith('/chunked')) {
        res.write('abc');
        res.write(Buffer.from('défg'));
        res.end('xyz', 'utf8');
      } else {
        files(req, res);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await log.close();
  });

  async function untilLogged(n: number): Promise<void> {
    while (logged < n) await new Promise<void>((resolve) => waiters.push(resolve));
  }

  test('each response is one combined-format line with the real body length', async () => {
    const start = logged;
    const headers = { referer: 'http://127.0.0.1/from', 'user-agent': 'zenconn-test/1.0 "quoted"' };
    const hello = await fetch(`http://127.0.0.1:${port}/hello`, { headers });
    const helloBody = Buffer.from(await hello.arrayBuffer());
    const chunked = await fetch(`http://127.0.0.1:${port}/chunked?access_token=s3cr3t.jwt&protocol=bin`, { headers });
    assert.equal(chunked.headers.get('transfer-encoding'), 'chunked');
    const chunkedBody = Buffer.from(await chunked.arrayBuffer());
    const file = await fetch(`http://127.0.0.1:${port}/app.js`, { headers: { 'user-agent': 'ua' } });
    const fileBody = Buffer.from(await file.arrayBuffer());
    const missing = await fetch(`http://127.0.0.1:${port}/missing.js`);
    const missingBody = Buffer.from(await missing.arrayBuffer());
    const head = await rawRequest(port, 'HEAD', '/app.js');
    const etag = head.headers['etag']!;
    const notModified = await rawRequest(port, 'GET', '/app.js', [`If-None-Match: ${etag}`]);
    assert.equal(notModified.status, 304);
    const range = await fetch(`http://127.0.0.1:${port}/app.js`, { headers: { range: 'bytes=0-9' } });
    const rangeBody = Buffer.from(await range.arrayBuffer());
    await untilLogged(start + 7);
    await log.close();

    const got = lines(logPath).slice(start);
    assert.equal(got.length, 7);
    const parsed = got.map((l) => {
      const m = COMBINED_RE.exec(l);
      assert.ok(m, `not combined: ${l}`);
      return m;
    });
    const now = new Date();
    for (const m of parsed) {
      assert.equal(m[1], '127.0.0.1');
      assert.equal(m[2], '-');
      assert.equal(Number(m[5]), now.getFullYear());
      const off = -now.getTimezoneOffset();
      const sign = off < 0 ? '-' : '+';
      const abs = Math.abs(off);
      assert.equal(m[9], `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`);
    }
    const [h, c, f, mi, hd, nm, rg] = parsed as RegExpExecArray[];
    assert.equal(h![10], 'GET /hello HTTP/1.1');
    assert.equal(h![11], '200');
    assert.equal(Number(h![12]), helloBody.length);
    assert.equal(h![13], 'http://127.0.0.1/from');
    assert.equal(h![14], 'zenconn-test/1.0 \\x22quoted\\x22');

    assert.equal(c![10], 'GET /chunked?access_token=***&protocol=bin HTTP/1.1');
    assert.equal(Number(c![12]), chunkedBody.length);
    assert.equal(chunkedBody.length, 11);
    assert.ok(!got[1]!.includes('s3cr3t'));

    assert.equal(f![10], 'GET /app.js HTTP/1.1');
    assert.equal(Number(f![12]), fileBody.length);
    assert.equal(fileBody.length, 2400);
    assert.equal(f![13], '-');
    assert.equal(f![14], 'ua');

    assert.equal(mi![11], '404');
    assert.equal(Number(mi![12]), missingBody.length);

    assert.equal(hd![10], 'HEAD /app.js HTTP/1.1');
    assert.equal(hd![12], '0');
    assert.equal(nm![11], '304');
    assert.equal(nm![12], '0');
    assert.equal(rg![11], '206');
    assert.equal(Number(rg![12]), rangeBody.length);
    assert.equal(rangeBody.length, 10);
    assert.ok(existsSync(join(tmp, 'logs', 'nested')), 'the log directory was created');
  });
});

describe('access log: entryFromHttp', () => {
  test('a request the client gave up on before any answer is 499 with 0 bytes', async () => {
    let resolveEntry: (e: AccessLogEntry) => void;
    const got = new Promise<AccessLogEntry>((resolve) => (resolveEntry = resolve));
    let resolveArrived: () => void;
    const arrived = new Promise<void>((resolve) => (resolveArrived = resolve));
    const server = createServer({ ServerResponse: LoggedResponse }, (req, res) => {
      resolveArrived();
      const startedAt = process.hrtime.bigint();
      const time = new Date();
      res.on('close', () => resolveEntry(entryFromHttp(req, res, startedAt, time)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const socket = connect(port, '127.0.0.1');
    socket.write('GET /slow?token=abc HTTP/1.1\r\nHost: x\r\nUser-Agent: quitter\r\n\r\n');
    await arrived;
    // Not a wait for a state: the request must last a while for its $request_time to be checked.
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    const e = await got;
    server.close();
    assert.equal(e.status, 499);
    assert.equal(e.remoteAddr, '127.0.0.1');
    assert.equal(e.bodyBytesSent, 0);
    assert.equal(e.method, 'GET');
    assert.equal(e.url, '/slow?token=abc');
    assert.equal(e.userAgent, 'quitter');
    assert.equal(e.referer, null);
    assert.equal(e.remoteUser, null);
    assert.equal(e.httpVersion, '1.1');
    assert.ok(e.durationMs >= 40, `duration ${e.durationMs}`);
    assert.equal(compileFormat('"$request"')(e), '"GET /slow?token=*** HTTP/1.1"');
  });
  test('$bytes_sent is every byte of the response, each pipelined response its own', async () => {
    const entries: AccessLogEntry[] = [];
    const server = createServer({ ServerResponse: LoggedResponse }, (req, res) => {
      const startedAt = process.hrtime.bigint();
      const time = new Date();
      res.on('close', () => entries.push(entryFromHttp(req, res, startedAt, time)));
      if (req.url === '/fixed') res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '10', 'X-Long': 'y'.repeat(300) }).end('fixed body');
      else if (req.url === '/implicit') res.end('hello world');
      else {
        res.write('abc');
        res.end('defg');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    const ended = new Promise<void>((resolve) => socket.on('end', resolve));
    // Three requests in one write: Node answers them in turn on the one connection.
    socket.write(
      'GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n' + 'GET /implicit HTTP/1.1\r\nHost: x\r\n\r\n' + 'GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
    );
    await ended;
    await waitFor('three access-log entries', () => entries.length === 3);
    server.close();
    const wire = Buffer.concat(received).toString('latin1');
    const byUrl = new Map(entries.map((e) => [e.url, e]));
    const sent = (e: AccessLogEntry): number => e.bodyBytesSent + (e.headerBytes ?? 0);
    assert.equal(byUrl.get('/fixed')!.bodyBytesSent, 10);
    assert.equal(byUrl.get('/implicit')!.bodyBytesSent, 11);
    assert.equal(byUrl.get('/chunked')!.bodyBytesSent, 7);
    // The three responses, split where each one starts, byte for byte.
    const second = wire.indexOf('HTTP/1.1 200', 1);
    const third = wire.indexOf('HTTP/1.1 200', second + 1);
    assert.ok(second > 0 && third > second, wire);
    assert.equal(sent(byUrl.get('/fixed')!), second);
    assert.equal(sent(byUrl.get('/implicit')!), third - second);
    assert.equal(sent(byUrl.get('/chunked')!), wire.length - third);
    // The header block of a response with a Content-Length is exactly headerBytes.
    assert.equal(byUrl.get('/fixed')!.headerBytes, wire.indexOf('\r\n\r\n') + 4);
  });
});

describe('access log: compileFormat', () => {
  test('every variable, in a zone with a half-hour offset', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata';
    try {
      const format = compileFormat(
        '$remote_addr|$remote_user|$time_local|$time_iso8601|$request|$status|$body_bytes_sent|' +
          '$http_referer|$http_user_agent|$request_time|$request_method|$request_uri|$server_protocol|$bytes_sent|${status}x'
      );
      const line = format(entry({ remoteUser: 'alice', url: '/a?access_token=xyz', headerBytes: 100 }));
      assert.equal(
        line,
        '203.0.113.7|alice|27/Nov/2026:12:00:46 +0530|2026-11-27T12:00:46+05:30|GET /a?access_token=*** HTTP/1.1|200|1234|' +
          'https://example.com/|curl/8.5.0|0.012|GET|/a?access_token=***|HTTP/1.1|1334|200x'
      );
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  test('a negative offset is written with a minus sign', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'America/St_Johns';
    try {
      // 2026-01-15 is winter there: UTC-03:30.
      const line = compileFormat('[$time_local] $time_iso8601')(entry({ time: new Date(Date.UTC(2026, 0, 15, 10, 0, 5)) }));
      assert.equal(line, '[15/Jan/2026:06:30:05 -0330] 2026-01-15T06:30:05-03:30');
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  test('empty values print "-"', () => {
    const line = compileFormat(COMBINED)(
      entry({ remoteAddr: '', referer: null, userAgent: '', remoteUser: null, time: new Date(Date.UTC(2026, 1, 1)) })
    );
    assert.match(line, /^- - - \[.+\] "GET \/index.html HTTP\/1.1" 200 1234 "-" "-"$/);
  });

  test('$request_time has millisecond resolution', () => {
    const f = compileFormat('$request_time');
    assert.equal(f(entry({ durationMs: 0 })), '0.000');
    assert.equal(f(entry({ durationMs: 1.6 })), '0.002');
    assert.equal(f(entry({ durationMs: 2500 })), '2.500');
  });

  test('a WebSocket session logs as a proxied upgrade: 101 and the session bytes', () => {
    const line = compileFormat(COMBINED)(
      entry({ url: '/ws?access_token=abc&protocol=json', status: 101, bodyBytesSent: 98765, time: new Date(Date.UTC(2026, 2, 3)) })
    );
    assert.match(line, /"GET \/ws\?access_token=\*\*\*&protocol=json HTTP\/1\.1" 101 98765 /);
  });

  test('quotes, backslashes, control characters and non-ASCII bytes are escaped as \\xHH', () => {
    const f = compileFormat('"$http_user_agent" "$http_referer" "$request"');
    const line = f(
      entry({ userAgent: 'evil" "x\\y\tz\x7f', referer: 'https://ex.com/é', url: '/a"b\nc', time: new Date(Date.UTC(2026, 3, 4)) })
    );
    assert.equal(line, '"evil\\x22 \\x22x\\x5Cy\\x09z\\x7F" "https://ex.com/\\xC3\\xA9" "GET /a\\x22b\\x0Ac HTTP/1.1"');
    assert.equal(escapeLogValue('plain text/1.0 (ok)'), 'plain text/1.0 (ok)');
  });

  test('an unknown variable throws at compile time, naming it', () => {
    assert.throws(() => compileFormat('$remote_addr $http_x_forwarded_for'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_CONFIG_INVALID');
      assert.match(err.message, /unknown variable "\$http_x_forwarded_for"/);
      return true;
    });
    assert.throws(() => compileFormat('$constructor'), /unknown variable "\$constructor"/);
    assert.throws(() => compileFormat('cost: $ 5'), /"\$" without a variable name/);
    assert.throws(() => new AccessLog({ destination: 'off', format: '$nope' }), /\$nope/);
  });
});

describe('access log: redaction', () => {
  test('access_token and token values become ***, other parameters stay', () => {
    assert.equal(redactUrl('/?access_token=eyJhbGciOi.abc.def&protocol=bin'), '/?access_token=***&protocol=bin');
    assert.equal(redactUrl('/ws?protocol=json&token=abc'), '/ws?protocol=json&token=***');
    assert.equal(redactUrl('/ws?a=1&Access_Token=x&token=y&tokens=z'), '/ws?a=1&Access_Token=***&token=***&tokens=z');
    assert.equal(redactUrl('/ws?access%5Ftoken=x'), '/ws?access%5Ftoken=***');
    assert.equal(redactUrl('/ws?access_token='), '/ws?access_token=***');
    assert.equal(redactUrl('/token/path'), '/token/path');
    assert.equal(redactUrl('/plain?x=1'), '/plain?x=1');
    assert.equal(redactUrl('/bad?%zz=1&token=2'), '/bad?%zz=1&token=***');
  });

  test('every format variable that carries the URI is redacted', () => {
    const line = compileFormat('"$request" $request_uri')(entry({ url: '/?access_token=SECRET&protocol=bin' }));
    assert.equal(line, '"GET /?access_token=***&protocol=bin HTTP/1.1" /?access_token=***&protocol=bin');
  });
});

describe('access log: AccessLog', () => {
  test('reopen after a rename: earlier lines in the old file, later ones in the new, none lost', async () => {
    const path = join(tmp, 'rotate', 'access.log');
    const log = new AccessLog({ destination: path, format: '$request_uri' });
    await log.ready();
    for (let i = 0; i < 500; i++) log.log(entry({ url: `/before/${i}` }));
    // Some lines are on disk and the next ones still queued when logrotate comes.
    await waitFor('the first lines on disk', () => statSync(path).size > 0);
    for (let i = 500; i < 1000; i++) log.log(entry({ url: `/before/${i}` }));
    // logrotate: rename, then signal; the lines still queued belong to the old file.
    renameSync(path, path + '.1');
    log.reopen();
    for (let i = 0; i < 1000; i++) log.log(entry({ url: `/after/${i}` }));
    await log.close();
    assert.deepEqual(lines(path + '.1'), Array.from({ length: 1000 }, (_, i) => `/before/${i}`));
    assert.deepEqual(lines(path), Array.from({ length: 1000 }, (_, i) => `/after/${i}`));
    assert.equal(log.droppedLines, 0);
  });

  test('two reopens in a row keep order and lose nothing', async () => {
    const path = join(tmp, 'rotate2.log');
    const log = new AccessLog({ destination: path, format: '$request_uri' });
    await log.ready();
    log.log(entry({ url: '/1' }));
    renameSync(path, path + '.1');
    log.reopen();
    log.log(entry({ url: '/2' }));
    log.reopen();
    log.log(entry({ url: '/3' }));
    await log.close();
    assert.deepEqual(lines(path + '.1'), ['/1']);
    assert.deepEqual(lines(path), ['/2', '/3']);
  });

  test('many reopens without a rename keep every line in order', async () => {
    const path = join(tmp, 'reopen-in-place.log');
    const log = new AccessLog({ destination: path, format: '$request_uri' });
    const want: string[] = [];
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 300; i++) {
        const url = `/r${round}/${i}`;
        want.push(url);
        log.log(entry({ url }));
      }
      if (round % 3 === 0) await new Promise((r) => setImmediate(r));
      log.reopen();
    }
    await log.close();
    assert.deepEqual(lines(path), want);
    assert.equal(log.droppedLines, 0);
  });

  test('close flushes every line', async () => {
    const path = join(tmp, 'flush.log');
    const log = new AccessLog({ destination: path });
    for (let i = 0; i < 20_000; i++) log.log(entry({ url: `/n/${i}` }));
    await log.close();
    const got = lines(path);
    assert.equal(got.length, 20_000);
    assert.match(got[19_999]!, /"GET \/n\/19999 HTTP\/1.1"/);
    // After close, log is a no-op and close can be called again.
    log.log(entry());
    await log.close();
    assert.equal(lines(path).length, 20_000);
  });

  test('"off" writes nothing anywhere', async () => {
    const dir = join(tmp, 'off');
    mkdirSync(dir);
    const written: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (String(chunk).includes('/off-marker')) written.push(String(chunk));
      return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    }) as typeof process.stdout.write;
    try {
      const log = new AccessLog({ destination: 'off' });
      log.log(entry({ url: '/off-marker' }));
      log.reopen();
      await new Promise((r) => setImmediate(r));
      await log.close();
    } finally {
      process.stdout.write = write;
    }
    assert.deepEqual(written, []);
    assert.deepEqual(readdirSync(dir), []);
  });

  test('"-" writes to stdout and close waits for it', async () => {
    const written: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (String(chunk).includes('/stdout-marker')) {
        written.push(String(chunk));
        const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      }
      return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    }) as typeof process.stdout.write;
    try {
      const log = new AccessLog({ format: '$request_uri' });
      assert.equal(log.destination, '-');
      log.log(entry({ url: '/stdout-marker/1' }));
      log.log(entry({ url: '/stdout-marker/2' }));
      await log.close();
    } finally {
      process.stdout.write = write;
    }
    assert.deepEqual(written, ['/stdout-marker/1\n/stdout-marker/2\n']);
  });

  test('lines over maxBufferedBytes are dropped and counted, the rest written whole', async () => {
    const path = join(tmp, 'bounded.log');
    const log = new AccessLog({ destination: path, format: '$request_uri', maxBufferedBytes: 1000 });
    await log.ready();
    // 100 lines of 10 bytes each fit exactly; everything after, in the same tick, does not.
    for (let i = 0; i < 150; i++) log.log(entry({ url: `/${String(i).padStart(8, '0')}` }));
    assert.equal(log.droppedLines, 50);
    await log.close();
    assert.deepEqual(lines(path), Array.from({ length: 100 }, (_, i) => `/${String(i).padStart(8, '0')}`));
  });

  test('a file that cannot be opened rejects ready(), reports the error and never throws from log', async () => {
    const blocker = join(tmp, 'blocker');
    writeFileSync(blocker, '');
    // A directory of the same name as the log file: open() fails with EISDIR.
    const path = join(tmp, 'isdir.log');
    mkdirSync(path);
    const errors: Error[] = [];
    const log = new AccessLog({ destination: path, onError: (err) => errors.push(err) });
    await assert.rejects(log.ready(), { code: 'EISDIR' });
    log.log(entry());
    await log.close();
    assert.equal(errors.length, 1);
    assert.ok(log.droppedLines >= 1);
    // A log directory that cannot be created is a config error at construction.
    assert.throws(() => new AccessLog({ destination: join(blocker, 'sub', 'a.log') }), { code: 'ERR_CONFIG_INVALID' });
  });
});
