import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { tempDir, TEST_JWT_SECRET, TEST_CHANNEL_SECRET } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { MAX_DATA_DEPTH } from '../../src/protocol/frames.js';

/** `[[…[]…]]`: `depth` arrays, the innermost empty. */
function nested(depth: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < depth; i++) v = [v];
  return v;
}
const jsonNest = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
/** The same value as MessagePack bytes: fixarray(1) … fixarray(0). */
const binNest = (depth: number): Buffer => Buffer.concat([Buffer.alloc(depth - 1, 0x91), Buffer.from([0x90])]);
const str = (s: string): Buffer => Buffer.concat([Buffer.from([0xa0 + s.length]), Buffer.from(s)]);

/** The four ways a broadcast comes in, each sending `data` nested `depth` deep on `channel`. */
type Entry = 'socket JSON' | 'socket binary' | 'HTTP JSON' | 'HTTP MessagePack';
const ENTRIES: Entry[] = ['socket JSON', 'socket binary', 'HTTP JSON', 'HTTP MessagePack'];

describe('one validation for every way a message comes in (zenconn serve)', () => {
  let zen: ZenProcess;
  let publisher: string;
  let sj: TestClient;
  let sb: TestClient;
  let j: TestClient;
  let b: TestClient;
  before(async () => {
    const dir = tempDir('zenconn-limits-');
    zen = await startZen([
      'serve', '--port', '0', '--host', '127.0.0.1',
      '--public', join(dir, 'public'),
      '--database', `sqlite:${join(dir, 'z.db')}`,
      '--access-log', 'off',
      '--spool-dir', join(dir, 'spool'),
      '--audit-journal-dir', join(dir, 'journal'),
      '--jwt-secret', TEST_JWT_SECRET,
      '--channel-secret', TEST_CHANNEL_SECRET,
      '--log-level', 'warn',
      // Room for the 500,000-deep body: depth is what is refused, not size.
      '--max-payload-bytes', '2000000',
      '--max-http-body-bytes', '2000000'
    ]);
    publisher = await makeToken('app', ['publish']);
    sj = await TestClient.connect(zen.port, { token: publisher });
    sb = await TestClient.connect(zen.port, { token: publisher, protocol: 'bin' });
    j = await TestClient.connect(zen.port);
    b = await TestClient.connect(zen.port, { protocol: 'bin' });
    for (const c of [j, b]) {
      await c.subscribe('edge');
      await c.subscribe('over');
    }
  });
  after(async () => {
    for (const c of [sj, sb, j, b]) c?.ws.terminate();
    if (zen && zen.child.exitCode === null) await zen.stop('SIGKILL');
  });

  const post = (body: string | Buffer, contentType: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${zen.port}/api/broadcast`, {
      method: 'POST',
      body,
      headers: { authorization: `Bearer ${publisher}`, 'content-type': contentType }
    });

  /** Sends `data` nested `depth` deep on `channel` through `entry`: the HTTP response, or null for a socket. */
  async function send(entry: Entry, channel: string, depth: number): Promise<Response | null> {
    switch (entry) {
      case 'socket JSON':
        sj.ws.send(`{"type":"broadcast","channel":${JSON.stringify(channel)},"data":${jsonNest(depth)}}`);
        return null;
      case 'socket binary':
        sb.ws.send(Buffer.concat([Buffer.from([0x93, 0x06]), str(channel), binNest(depth)]));
        return null;
      case 'HTTP JSON':
        return post(`{"channel":${JSON.stringify(channel)},"data":${jsonNest(depth)}}`, 'application/json');
      case 'HTTP MessagePack':
        return post(Buffer.concat([Buffer.from([0x82]), str('channel'), str(channel), str('data'), binNest(depth)]), 'application/msgpack');
    }
  }

  test(`data ${MAX_DATA_DEPTH} deep (the limit) is accepted and delivered on all four entries`, async () => {
    for (const entry of ENTRIES) {
      const res = await send(entry, 'edge', MAX_DATA_DEPTH);
      if (res === null) {
        const sender = entry === 'socket JSON' ? sj : sb;
        assert.equal((await sender.nextOf('received')).count, 2, entry);
      } else {
        assert.equal(res.status, 200, `${entry}: ${await res.text()}`);
      }
      for (const c of [j, b]) {
        const e = await c.nextOf('event');
        assert.equal(e.type === 'event' && e.channel, 'edge', entry);
        assert.deepEqual(e.type === 'event' && e.data, nested(MAX_DATA_DEPTH), `${entry} → ${c.protocol}`);
      }
    }
  });

  test(`data ${MAX_DATA_DEPTH + 1} deep is refused on all four entries; 500,000 deep gets one 400; nothing is sent or recorded as delivered`, async () => {
    for (const entry of ENTRIES) {
      const res = await send(entry, 'over', MAX_DATA_DEPTH + 1);
      if (res === null) {
        const sender = entry === 'socket JSON' ? sj : sb;
        assert.deepEqual(await sender.nextOf('error'), { type: 'error', channel: 'over', errors: ['data too deep'] }, entry);
      } else {
        assert.equal(res.status, 400, entry);
        assert.equal(((await res.json()) as { code: string }).code, 'ERR_HTTP_DATA_TOO_DEEP', entry);
      }
    }
    const huge = await send('HTTP JSON', 'over', 500_000);
    assert.equal(huge!.status, 400);
    assert.deepEqual(await huge!.json(), { error: `data nested deeper than ${MAX_DATA_DEPTH} levels`, code: 'ERR_HTTP_DATA_TOO_DEEP' });

    // A marker after them: the subscribers' next event on `over` is the marker, so none of the refused ones went out.
    const marker = await post(JSON.stringify({ channel: 'over', data: 'marker' }), 'application/json');
    assert.equal(marker.status, 200);
    for (const c of [j, b]) {
      const e = await c.nextOf('event');
      assert.deepEqual(e.type === 'event' && [e.channel, e.data], ['over', 'marker']);
    }
    // The marker's 200 came once its rows were durable, and the refusals' before them.
    const audit = await fetch(`http://127.0.0.1:${zen.port}/api/audit?channel=over&type=event`, { headers: { authorization: `Bearer ${await makeToken('auditor', ['audit'])}` } });
    assert.equal(audit.status, 200);
    const rows = ((await audit.json()) as { rows: Array<{ recipients: number; payload: unknown }> }).rows;
    assert.equal(rows.length, 1, `only the marker is an event: ${JSON.stringify(rows).slice(0, 500)}`);
    assert.equal(rows[0]!.recipients, 2);

    // Every write of the process is out once it has stopped: no second answer to any request.
    assert.equal(await zen.stop('SIGTERM'), 0);
    assert.doesNotMatch(zen.stderr(), /ERR_HTTP_HEADERS_SENT/);
    assert.doesNotMatch(zen.stderr(), /unserializable|RangeError/);
  });
});
