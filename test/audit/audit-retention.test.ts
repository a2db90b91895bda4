import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AuditRetention, parseDurationMs } from '../../src/audit/audit-retention.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { newId } from '../../src/protocol/ids.js';
import type { AuditRecord } from '../../src/store/store.js';
import { runZen } from '../helpers/process.js';
import { OPTIONS } from '../../src/config/options.js';
import { allRows, startAuditServer, tempFolder, waitFor } from './helpers.js';

const DAY = 86_400_000;

function aged(days: number, channel = 'old'): AuditRecord {
  return {
    id: newId(),
    messageId: null,
    at: new Date(Date.now() - days * DAY),
    serverId: 'srv',
    sessionId: null,
    userId: null,
    direction: 'system',
    type: 'session.open',
    channel,
    recipients: null,
    payload: null,
    payloadBin: null
  };
}

test('durations: ms, s, m, h, d', () => {
  assert.equal(parseDurationMs('30d'), 30 * DAY);
  assert.equal(parseDurationMs('12h'), 12 * 3_600_000);
  assert.equal(parseDurationMs('90m'), 5_400_000);
  assert.equal(parseDurationMs('45s'), 45_000);
  assert.equal(parseDurationMs('500ms'), 500);
  for (const bad of ['', '30', 'd', '1w', '1.5h', '-1d']) assert.equal(parseDurationMs(bad), null, bad);
});

test('a pass deletes every row older than the retention in small batches, and nothing newer', async () => {
  const store = new SqliteStore(join(tempFolder(), 'r.db'));
  await store.open();
  try {
    await store.writeAudit([...Array.from({ length: 10 }, (_, i) => aged(31 + i)), ...Array.from({ length: 4 }, () => aged(29, 'kept'))]);
    const deletes: number[] = [];
    const del = store.deleteAuditBefore.bind(store);
    store.deleteAuditBefore = async (before, limit) => {
      const n = await del(before, limit);
      deletes.push(n);
      return n;
    };
    const retention = new AuditRetention({ store, maxAgeMs: 30 * DAY, batchRows: 3, pauseMs: 1 });
    assert.equal(await retention.runOnce(), 10);
    assert.deepEqual(deletes, [3, 3, 3, 1]);
    assert.deepEqual((await allRows(store)).map((r) => r.channel), ['kept', 'kept', 'kept', 'kept']);
    assert.equal(await retention.runOnce(), 0);
    await retention.stop();
  } finally {
    await store.close();
  }
});

test('the retention is finite by default: 30 days', () => {
  assert.equal(OPTIONS.auditRetention.default, '30d');
  assert.equal(parseDurationMs(String(OPTIONS.auditRetention.default)), 30 * DAY);
});

test('a server with the default retention (30d) deletes older rows in the background; --audit-retention off keeps them', async () => {
  // `keep` starts first: had it a retention, its first pass (a second after start) would come before srv's.
  const keep = await startAuditServer({ 'audit-retention': 'off' });
  const srv = await startAuditServer();
  try {
    assert.equal(srv.node.config.auditRetention, '30d');
    for (const s of [keep, srv]) await s.node.store.writeAudit([aged(40), aged(35), aged(29, 'recent')]);
    await waitFor('old rows deleted', async () => (await allRows(srv.node.store, { channel: 'old' })).length === 0, 5000);
    assert.equal((await allRows(srv.node.store, { channel: 'recent' })).length, 1);
    assert.equal((await allRows(keep.node.store, { channel: 'old' })).length, 2, 'off keeps every row');
  } finally {
    await srv.stop();
    await keep.stop();
  }
});

test('a retention of zero stops serve with one line, exit 2', async () => {
  const dir = tempFolder();
  const r = await runZen(['serve', '--port', '0', '--public', dir, '--database', `sqlite:${join(dir, 'z.db')}`, '--audit-retention', '0d', '--audit-journal-dir', join(dir, 'j'), '--spool-dir', join(dir, 's')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^zenconn: --audit-retention: expected a duration/);
});
