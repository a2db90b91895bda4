import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { AuditBudget } from '../../src/audit/audit-budget.js';
import { RefusalLimiter } from '../../src/http/refusal-limiter.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import type { AuditRecord, Store } from '../../src/store/store.js';
import { OPTIONS } from '../../src/config/options.js';
import { newId } from '../../src/protocol/ids.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { withSchema, type TestSchema } from '../helpers/pg.js';
import { allRows, startAuditServer, tempFolder, waitFor } from './helpers.js';

/** A stored row with a payload of `bytes` characters, at `at`. */
function bulky(bytes: number, at = new Date()): AuditRecord {
  return {
    id: newId(),
    messageId: null,
    at,
    serverId: 'filler',
    sessionId: null,
    userId: null,
    direction: 'in',
    type: 'broadcast',
    channel: 'filler',
    recipients: null,
    // Random, so PostgreSQL's TOAST compression does not shrink it.
    payload: JSON.stringify(randomBytes(bytes / 2).toString('hex')),
    payloadBin: null
  };
}

describe('the audit budget', () => {
  test('the edge: exactly --audit-max-bytes is within the budget, one byte more is full; refusals are counted', async () => {
    let bytes = 1000;
    const turns: Array<[boolean, number, number]> = [];
    const budget = new AuditBudget({ measure: async () => bytes, maxBytes: 1000, intervalMs: 3_600_000, onChange: (full, b, refused) => turns.push([full, b, refused]) });
    await budget.start();
    assert.equal(budget.full, false, 'at the cap: accepted');
    assert.equal(budget.refuseBroadcast(), false);
    bytes = 1001;
    await budget.check();
    assert.equal(budget.full, true, 'one byte past the cap: full');
    assert.equal(budget.refuseBroadcast(), true);
    assert.equal(budget.refuseBroadcast(), true);
    bytes = 1000;
    await budget.check();
    assert.equal(budget.full, false);
    assert.deepEqual(turns, [
      [true, 1001, 0],
      [false, 1000, 2]
    ]);
    await budget.stop();
  });

  test('defaults: a finite retention and a finite cap, measured every few seconds', () => {
    assert.equal(OPTIONS.auditRetention.default, '30d');
    assert.equal(OPTIONS.auditMaxBytes.default, 10 * 1024 ** 3);
    assert.equal(OPTIONS.auditSizeCheckMs.default, 5000);
  });

  for (const backend of ['sqlite', 'postgres'] as const) {
    test(`${backend}: auditBytes grows with the rows and shrinks when they are deleted`, async () => {
      let store: Store;
      let schema: TestSchema | null = null;
      if (backend === 'sqlite') store = new SqliteStore(join(tempFolder(), 'a.db'));
      else {
        schema = await withSchema();
        store = new PostgresStore(schema.url);
      }
      try {
        await store.open();
        const empty = await store.auditBytes();
        const old = new Date(Date.now() - 60_000);
        await store.writeAudit(Array.from({ length: 50 }, () => bulky(4000, old)));
        // PostgreSQL's row statistics are published within seconds, not at commit.
        await waitFor('the rows counted', async () => (await store.auditBytes()) >= empty + 150_000, 20_000);
        assert.equal(await store.deleteAuditBefore(new Date(), 1000), 50);
        await waitFor('the rows freed', async () => (await store.auditBytes()) < empty + 50_000, 20_000);
      } finally {
        await store.close();
        await schema?.drop();
      }
    });
  }

  test('past --audit-max-bytes: audit full over the socket, 507 over HTTP, /readyz 503, a log line; after retention frees space broadcasts go again', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    // Retention 3 s: a row cannot be deleted before it is 3 s old, which keeps the
    // state full long enough for the checks below, whatever the machine's load.
    const srv = await startAuditServer({ 'audit-max-bytes': '1000000', 'audit-size-check-ms': '100', 'audit-retention': '3s' }, { logger });
    const publish = await makeToken('backend', ['publish']);
    const post = (data: unknown): Promise<Response> =>
      fetch(`http://127.0.0.1:${srv.port}/api/broadcast`, { method: 'POST', headers: { authorization: `Bearer ${publish}`, 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'news', data }) });
    const readyz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${srv.port}/readyz`)).status;
    try {
      const a = await TestClient.connect(srv.port, { token: publish });
      await a.subscribe('news');
      a.send({ type: 'broadcast', channel: 'news', data: 'before' });
      assert.equal((await a.nextOf('received')).count, 0, 'under the cap: accepted');
      assert.equal((await post('before')).status, 200);
      assert.equal(await readyz(), 200);

      await srv.node.store.writeAudit(Array.from({ length: 60 }, () => bulky(20_000)));
      await waitFor('audit full', () => srv.node.audit.full);
      await srv.node.audit.flush(2000);
      assert.ok((await allRows(srv.node.store, { type: 'audit.full' })).length === 1, 'the turn is in the trail');
      a.send({ type: 'broadcast', channel: 'news', data: 'during' });
      const e = await a.nextOf('error');
      assert.deepEqual(e.errors, ['audit full']);
      assert.equal(e.channel, 'news');
      const res = await post('during');
      assert.equal(res.status, 507);
      assert.deepEqual(await res.json(), { error: 'audit full', code: 'ERR_AUDIT_FULL' });
      const r = await fetch(`http://127.0.0.1:${srv.port}/readyz`);
      assert.equal(r.status, 503);
      assert.equal(((await r.json()) as { auditFull: boolean }).auditFull, true);
      assert.ok(lines.some((l) => l.includes('audit full')), 'a log line says so');
      assert.equal(srv.node.audit.full, true, 'the checks above ran while full');

      await waitFor('retention freed space', () => !srv.node.audit.full, 20_000);
      a.send({ type: 'broadcast', channel: 'news', data: 'after' });
      assert.equal((await a.nextOf('received')).count, 0);
      assert.equal((await post('after')).status, 200);
      assert.equal(await readyz(), 200);
      await srv.node.audit.flush(2000);
      const resumed = (await allRows(srv.node.store, { type: 'audit.resumed' }))[0];
      assert.ok(resumed, 'the turn back is in the trail');
      assert.equal((JSON.parse(resumed.payload!) as { refused: number }).refused, 2, 'the refused broadcasts are counted');
      const sent = (await allRows(srv.node.store, { type: 'broadcast', channel: 'news' })).map((row) => JSON.parse(row.payload!) as string);
      assert.ok(!sent.includes('during'), 'nothing refused was sent as a message');
      a.ws.terminate();
    } finally {
      await srv.stop();
    }
  });
});

/** A WebSocket upgrade with a bad token, from `localAddress`; resolves with its status. */
function refusedUpgrade(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      localAddress,
      path: '/',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        authorization: 'Bearer not.a.jwt'
      }
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('upgrade', () => reject(new Error('upgraded')));
    req.on('error', reject);
    req.end();
  });
}

describe('refused attempts in the audit trail', () => {
  test('are recorded at a bounded rate per client address, with the count of those left out', async () => {
    const srv = await startAuditServer({ 'audit-refused-per-minute': '3', 'audit-refused-addresses': '1' });
    try {
      for (let i = 0; i < 7; i++) assert.equal(await refusedUpgrade(srv.port, '127.0.0.1'), 401);
      await srv.node.audit.flush(2000);
      const rows = async (): Promise<Array<Record<string, unknown>>> =>
        (await allRows(srv.node.store, { type: 'session.refused' })).map((r) => JSON.parse(r.payload!) as Record<string, unknown>);
      assert.equal((await rows()).length, 3, 'the bucket (3 a minute) lets 3 of 7 through');
      // Another address has its own bucket; the first is forgotten (at most 1 address), its count rides on.
      assert.equal(await refusedUpgrade(srv.port, '127.0.0.2'), 401);
      await srv.node.audit.flush(2000);
      const all = await rows();
      assert.equal(all.length, 4);
      assert.equal(all[3]!.remoteAddr, '127.0.0.2');
      assert.equal(all[3]!.suppressedElsewhere, 4);
    } finally {
      await srv.stop();
    }
  });

  test('the limiter: a bucket per address refilled over the minute; the next row carries `suppressed`; at most N addresses', () => {
    let now = 0;
    const limiter = new RefusalLimiter(2, 2, () => now);
    assert.deepEqual(limiter.admit('a'), { suppressed: 0, forgotten: 0 });
    assert.deepEqual(limiter.admit('a'), { suppressed: 0, forgotten: 0 });
    assert.equal(limiter.admit('a'), null, 'the third in the minute is left out');
    assert.equal(limiter.admit('a'), null);
    assert.deepEqual(limiter.admit('b'), { suppressed: 0, forgotten: 0 }, 'another address is not affected');
    now += 20_000;
    assert.equal(limiter.admit('a'), null, 'two thirds of a token: not yet');
    now += 15_000;
    assert.deepEqual(limiter.admit('a'), { suppressed: 3, forgotten: 0 }, 'refilled: the row says 3 were left out');
    assert.equal(limiter.size, 2);
    assert.equal(limiter.admit('a'), null);
    assert.deepEqual(limiter.admit('c'), { suppressed: 0, forgotten: 0 }, 'b (least recently seen) is forgotten');
    assert.equal(limiter.size, 2);
    assert.deepEqual(limiter.admit('d'), { suppressed: 0, forgotten: 1 }, 'a is forgotten with its one left out');
  });
});
