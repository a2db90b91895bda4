import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import type { AuditQuery, AuditRecord, Store } from '../../src/store/store.js';
import { encodePayload, decodePayload } from '../../src/audit/audit-payload.js';
import { newId } from '../../src/protocol/ids.js';
import { withSchema, type TestSchema } from '../helpers/pg.js';
import { allRows, tempFolder } from './helpers.js';

const COLUMNS = ['id', 'message_id', 'at', 'server_id', 'session_id', 'user_id', 'direction', 'type', 'channel', 'payload', 'payload_bin', 'recipients', 'event_offset', 'event_epoch'];

const base = Date.parse('2026-05-01T00:00:00.000Z');

function row(i: number, over: Partial<AuditRecord> = {}): AuditRecord {
  const p = encodePayload({ i });
  return {
    id: newId(),
    messageId: i % 2 === 0 ? `msg-${i}` : null,
    at: new Date(base + i * 1000),
    serverId: 'srv',
    sessionId: `s${i % 3}`,
    userId: i % 4 === 0 ? 'alice' : null,
    direction: (['in', 'out', 'system'] as const)[i % 3],
    type: i % 5 === 0 ? 'error' : 'event',
    channel: i % 2 === 0 ? 'news' : 'sport',
    recipients: i % 3 === 1 ? i * 10 : null,
    payload: p.json,
    payloadBin: p.bin,
    ...over
  };
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`audit rows in ${backend}`, () => {
    let store: Store;
    let schema: TestSchema | null = null;
    let sqlitePath = '';
    const rows = Array.from({ length: 30 }, (_, i) => row(i));

    before(async () => {
      if (backend === 'sqlite') {
        sqlitePath = join(tempFolder(), 'audit.db');
        store = new SqliteStore(sqlitePath);
      } else {
        schema = await withSchema();
        store = new PostgresStore(schema.url);
      }
      await store.open();
      // Written twice, in two batches of overlapping rows: the second changes nothing.
      await store.writeAudit(rows);
      await store.writeAudit([...rows.slice(10), ...rows.slice(0, 5)]);
    });
    after(async () => {
      await store.close();
      await schema?.drop();
    });

    test('the audit table has the contract columns', async () => {
      let names: string[];
      if (schema !== null) {
        names = (await schema.query<{ column_name: string }>(
          `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'audit' ORDER BY ordinal_position`,
          [schema.schema]
        )).map((c) => c.column_name);
      } else {
        const db = new Database(sqlitePath, { readonly: true });
        names = (db.prepare(`PRAGMA table_info(audit)`).all() as Array<{ name: string }>).map((c) => c.name);
        db.close();
      }
      assert.deepEqual(names, COLUMNS);
    });

    test('writeAudit is idempotent by row id', async () => {
      const all = await allRows(store);
      assert.equal(all.length, 30);
      assert.deepEqual(all.map((r) => r.id), rows.map((r) => r.id));
      const r = all[7]!;
      // jsonb normalizes whitespace: compare the payload as JSON.
      assert.deepEqual({ ...r, payload: JSON.parse(r.payload!) }, { ...rows[7]!, payload: JSON.parse(rows[7]!.payload!) });
    });

    test('each filter selects its rows; newest first by default, oldest first with asc', async () => {
      const q: Omit<AuditQuery, 'order'> = { since: null, until: null, channel: null, sessionId: null, userId: null, type: null, direction: null, messageId: null, after: null, limit: 100 };
      const ids = async (over: Partial<AuditQuery>) =>
        (await store.queryAudit({ ...q, order: 'desc', ...over })).map((r) => Number(JSON.parse(r.payload!).i));
      const all = Array.from({ length: 30 }, (_, i) => i);
      assert.deepEqual(await ids({}), [...all].reverse());
      assert.deepEqual(await ids({ order: 'asc' }), all);
      assert.deepEqual(await ids({ channel: 'news', order: 'asc' }), all.filter((i) => i % 2 === 0));
      assert.deepEqual(await ids({ sessionId: 's1', order: 'asc' }), all.filter((i) => i % 3 === 1));
      assert.deepEqual(await ids({ userId: 'alice', order: 'asc' }), all.filter((i) => i % 4 === 0));
      assert.deepEqual(await ids({ type: 'error', order: 'asc' }), all.filter((i) => i % 5 === 0));
      assert.deepEqual(await ids({ direction: 'system', order: 'asc' }), all.filter((i) => i % 3 === 2));
      assert.deepEqual(await ids({ messageId: 'msg-8' }), [8]);
      assert.deepEqual(await ids({ since: new Date(base + 25_000), order: 'asc' }), [25, 26, 27, 28, 29]);
      assert.deepEqual(await ids({ until: new Date(base + 3000), order: 'asc' }), [0, 1, 2], 'until is exclusive');
      assert.deepEqual(await ids({ channel: 'news', type: 'error', direction: 'in', order: 'asc' }), [0]);
      assert.deepEqual(await ids({ limit: 3 }), [29, 28, 27]);
    });

    test('keyset paging: rows after (at, id) in either order, with ties on `at` broken by id', async () => {
      const at = new Date(base + 100_000);
      const tied = Array.from({ length: 5 }, () => row(100, { at, channel: 'tie' }));
      await store.writeAudit(tied);
      const expected = tied.map((r) => r.id).sort();
      const q = { since: null, until: null, channel: 'tie', sessionId: null, userId: null, type: null, direction: null, messageId: null, limit: 2 };
      for (const order of ['asc', 'desc'] as const) {
        const seen: string[] = [];
        let after: { at: Date; id: string } | null = null;
        for (;;) {
          const page = await store.queryAudit({ ...q, order, after });
          seen.push(...page.map((r) => r.id));
          if (page.length < 2) break;
          after = { at: page[1]!.at, id: page[1]!.id };
        }
        assert.deepEqual(seen, order === 'asc' ? expected : [...expected].reverse());
      }
    });

    test('payloads: JSON as stored, binary and NUL-bearing values exact through payload_bin', async () => {
      const value = { bytes: new Uint8Array([9, 8, 7]), text: 'a\u0000b', deep: { list: [1, 'two', null] } };
      const p = encodePayload(value);
      const r = row(200, { channel: 'payloads', payload: p.json, payloadBin: p.bin });
      await store.writeAudit([r]);
      const [back] = await allRows(store, { channel: 'payloads' });
      assert.deepEqual(JSON.parse(back!.payload!), { bytes: 'CQgH', text: 'a\ufffdb', deep: { list: [1, 'two', null] } });
      const exact = decodePayload(back!.payload, back!.payloadBin) as typeof value;
      assert.deepEqual([...exact.bytes], [9, 8, 7]);
      assert.equal(exact.text, 'a\u0000b');
      const none = row(201, { channel: 'nopayload', payload: null, payloadBin: null });
      await store.writeAudit([none]);
      assert.equal((await allRows(store, { channel: 'nopayload' }))[0]!.payload, null);
    });

    test('deleteAuditBefore removes at most `limit` of the oldest rows before the time', async () => {
      const cut = new Date(base + 10_000);
      assert.equal(await store.deleteAuditBefore(cut, 4), 4);
      assert.equal(await store.deleteAuditBefore(cut, 100), 6);
      assert.equal(await store.deleteAuditBefore(cut, 100), 0);
      const left = await allRows(store);
      assert.ok(left.every((r) => r.at >= cut));
      assert.equal(left.filter((r) => r.channel === 'news' || r.channel === 'sport').length, 20);
    });
  });
}
