import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startZen, runZen, type ZenProcess } from '../helpers/process.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { TEST_JWT_SECRET } from '../helpers/server.js';
import { encodeJournalLine, journalKey } from '../../src/audit/audit-journal.js';
import { newId } from '../../src/protocol/ids.js';
import { tempFolder } from './helpers.js';

type Row = Record<string, unknown> & { type: string; direction: string; channel: string | null; message_id: string | null; recipients: number | null };

describe('zenconn audit', () => {
  const dir = tempFolder();
  const db = `sqlite:${join(dir, 'zen.db')}`;
  const journal = join(dir, 'journal');
  const common = ['--database', db, '--audit-journal-dir', journal];
  let zen: ZenProcess;
  const eventIds: string[] = [];
  let a: TestClient;
  let b: TestClient;

  const audit = async (...args: string[]) => {
    const r = await runZen(['audit', ...common, ...args]);
    return r;
  };
  const json = async (...args: string[]): Promise<Row[]> => {
    const r = await audit('--format', 'json', ...args);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Row[];
  };

  before(async () => {
    mkdirSync(join(dir, 'public'));
    zen = await startZen(['serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--access-log', 'off', '--jwt-secret', TEST_JWT_SECRET, '--spool-dir', join(dir, 'spool'), ...common]);
    // The scenario: two clients subscribe to news, one broadcasts three messages,
    // the other tries `*` without the grant.
    a = await TestClient.connect(zen.port, { token: await makeToken('alice') });
    b = await TestClient.connect(zen.port);
    await a.subscribe('news');
    await b.subscribe('news');
    for (let i = 1; i <= 3; i++) {
      a.send({ type: 'broadcast', channel: 'news', data: { text: `hello ${i}` } });
      eventIds.push((await b.nextOf('event')).id);
      assert.equal((await a.nextOf('received')).count, 1);
    }
    b.send({ type: 'broadcast', channel: '*', data: 'everyone' });
    await b.nextOf('error');
  });
  after(async () => {
    a.ws.terminate();
    b.ws.terminate();
    await zen.stop();
  });

  test('--channel news --format json: the subscribes, three in broadcasts and three out events with the subscriber’s ids', async () => {
    const rows = await json('--channel', 'news');
    const of = (direction: string, type: string) => rows.filter((r) => r.direction === direction && r.type === type);
    assert.equal(of('in', 'subscribe').length, 2);
    assert.equal(of('out', 'subscribed').length, 2);
    const ins = of('in', 'broadcast');
    const outs = of('out', 'event');
    assert.equal(ins.length, 3);
    assert.equal(outs.length, 3);
    assert.deepEqual(outs.map((r) => r.message_id).reverse(), eventIds, 'newest first; ids as the subscriber received them');
    assert.deepEqual(ins.map((r) => r.message_id).reverse(), eventIds);
    assert.ok(outs.every((r) => r.recipients === 1));
    assert.deepEqual(outs.map((r) => r.payload).reverse(), [1, 2, 3].map((i) => ({ text: `hello ${i}` })));
    assert.ok(ins.every((r) => r.user_id === 'alice' && r.session_id === a.sessionId));
    assert.deepEqual(Object.keys(rows[0]!), ['id', 'message_id', 'at', 'server_id', 'session_id', 'user_id', 'direction', 'type', 'channel', 'payload', 'recipients']);
  });

  test('--type error shows the forbidden * attempt (and the table format reads in a terminal)', async () => {
    const rows = await json('--type', 'error');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.channel, '*');
    assert.deepEqual(rows[0]!.payload, ['forbidden']);
    assert.equal(rows[0]!.session_id, b.sessionId);
    const table = await audit('--type', 'error');
    assert.equal(table.code, 0);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^AT\s+DIR\s+TYPE\s+CHANNEL\s+SESSION\s+USER\s+RCPT\s+MESSAGE\s+PAYLOAD$/);
    assert.match(lines[1]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z\s+out\s+error\s+\*\s+…\S{8}\s+-\s+1\s+-\s+\["forbidden"\]$/);
    assert.equal(lines[2], '(1 row)');
  });

  test('filters: --session, --user, --direction, --since/--until, --limit, --order; ndjson', async () => {
    const mine = await json('--session', a.sessionId, '--limit', '0');
    assert.ok(mine.length >= 9 && mine.every((r) => r.session_id === a.sessionId));
    assert.ok((await json('--user', 'alice')).every((r) => r.user_id === 'alice'));
    assert.deepEqual([...new Set((await json('--direction', 'system')).map((r) => r.type))].sort(), ['session.open']);
    assert.equal((await json('--since', '10m')).length, (await json('--limit', '0')).length);
    assert.equal((await json('--until', '10m')).length, 0);
    assert.equal((await json('--since', new Date(Date.now() + 60_000).toISOString())).length, 0);
    const two = await json('--limit', '2', '--order', 'asc');
    assert.deepEqual(two.map((r) => r.type), ['session.open', 'accepted']);
    const nd = await audit('--format', 'ndjson', '--channel', 'news', '--direction', 'out', '--type', 'event');
    assert.equal(nd.code, 0);
    const lines = nd.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Row);
    assert.deepEqual(lines.map((l) => l.message_id).reverse(), eventIds);
  });

  test('the database comes from ZENCONN_DATABASE or --config as for serve; bad flags exit 2, a missing database 1', async () => {
    const viaEnv = await runZen(['audit', '--format', 'json', '--type', 'error', '--audit-journal-dir', journal], { env: { ZENCONN_DATABASE: db } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.equal((JSON.parse(viaEnv.stdout) as Row[]).length, 1);
    const config = join(dir, 'zen.json');
    writeFileSync(config, JSON.stringify({ database: db, auditJournalDir: journal }));
    const viaFile = await runZen(['audit', '--config', config, '--format', 'ndjson', '--type', 'error']);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.equal(viaFile.stdout.trimEnd().split('\n').length, 1);
    for (const bad of [['--format', 'csv'], ['--direction', 'up'], ['--since', 'last week'], ['--limit', '-1'], ['--colour']]) {
      const r = await audit(...bad);
      assert.equal(r.code, 2, bad.join(' '));
      assert.match(r.stderr, /^zenconn: /);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    }
    const missing = await runZen(['audit', '--database', `sqlite:${join(dir, 'nope.db')}`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such database file/);
    assert.equal(existsSync(join(dir, 'nope.db')), false, 'reading does not create a database');
  });

  test('journal files a crashed server left are replayed first, so acknowledged rows are there to read', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const id = newId();
    mkdirSync(journal, { recursive: true });
    const file = join(journal, `audit-${journalKey(db)}-crashed.${dead}.ndjson`);
    writeFileSync(file, encodeJournalLine({
      id,
      messageId: 'from-the-journal',
      at: new Date(),
      serverId: 'crashed',
      sessionId: null,
      userId: null,
      direction: 'in',
      type: 'broadcast',
      channel: 'journal',
      recipients: null,
      payload: '{"saved":true}',
      payloadBin: null
    }));
    const r = await audit('--format', 'json', '--channel', 'journal');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /replayed 1 audit journal file/);
    assert.deepEqual((JSON.parse(r.stdout) as Row[]).map((x) => [x.id, x.payload]), [[id, { saved: true }]]);
    assert.deepEqual(readdirSync(journal).filter((f) => f.includes('crashed')), []);
  });
});
