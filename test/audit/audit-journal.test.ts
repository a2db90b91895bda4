import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalFile } from '../../src/store/durable/journal-file.js';
import { holdFile, releaseFile } from '../../src/store/durable/journal-claim.js';
import {
  auditJournalCodec,
  claimOrphanJournals,
  decodeJournalLine,
  encodeJournalLine,
  journalKey,
  ownJournalPath
} from '../../src/audit/audit-journal.js';
import type { AuditRecord } from '../../src/store/store.js';
import { tempFolder } from './helpers.js';

function record(id: string, over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id,
    messageId: 'm-' + id,
    at: new Date('2026-03-04T05:06:07.089Z'),
    serverId: 'srv',
    sessionId: 'sess',
    userId: null,
    direction: 'out',
    type: 'event',
    channel: 'news',
    recipients: 5000,
    payload: '{"text":"hi"}',
    payloadBin: null,
    ...over
  };
}

/** A pid that no process has: one of a child that already exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

test('a journal line round-trips every column; the payload is spliced in as JSON', () => {
  const r = record('a', { payloadBin: Buffer.from([1, 2, 3]), userId: 'alice' });
  const line = encodeJournalLine(r);
  assert.ok(line.endsWith('}\n'));
  assert.match(line, /"payload":\{"text":"hi"\}\}\n$/);
  assert.deepEqual(decodeJournalLine(line.trimEnd()), { ...r, payloadBin: Buffer.from([1, 2, 3]) });
  const none = record('b', { payload: null, messageId: null, recipients: null });
  assert.deepEqual(decodeJournalLine(encodeJournalLine(none).trimEnd()), none);
});

test('appends are read back from the committed offset; a torn last line is reported, not replayed', () => {
  const dir = tempFolder();
  const path = join(dir, 'j.ndjson');
  const file = JournalFile.open(path, auditJournalCodec);
  file.append(encodeJournalLine(record('1')) + encodeJournalLine(record('2')));
  let read = file.read(1);
  assert.deepEqual(read.items.map((r) => r.id), ['1']);
  file.commit(read);
  assert.equal(file.drained, false);
  file.append(encodeJournalLine(record('3')));
  appendFileSync(path, '{"id":"4","torn'); // a crash in the middle of a write
  const reopened = JournalFile.open(path, auditJournalCodec);
  read = reopened.read(100);
  assert.deepEqual(read.items.map((r) => r.id), ['1', '2', '3']);
  assert.deepEqual(read.bad, ['{"id":"4","torn']);
  reopened.commit(read);
  assert.equal(reopened.drained, true);
  reopened.remove();
  file.close();
  assert.equal(existsSync(path), false);
});

test('the journal key tells databases apart and ignores a PostgreSQL password', () => {
  assert.equal(journalKey('sqlite:./data/a.db'), journalKey(`sqlite:${process.cwd()}/data/a.db`));
  assert.notEqual(journalKey('sqlite:./data/a.db'), journalKey('sqlite:./data/b.db'));
  assert.equal(journalKey('postgres://u:one@h:5432/db'), journalKey('postgres://u:two@h/db'));
  assert.notEqual(journalKey('postgres://u@h/db'), journalKey('postgres://u@h/db?options=-c%20search_path%3Dother'));
  assert.match(journalKey('sqlite::memory:'), /^[0-9a-f]{12}$/);
});

test('orphans are claimed only for this database and only when their process is gone', () => {
  const dir = tempFolder();
  const key = journalKey('sqlite:/x.db');
  const otherKey = journalKey('sqlite:/y.db');
  const dead = deadPid();
  const orphan = join(dir, `audit-${key}-srv1.${dead}.ndjson`);
  const alive = join(dir, `audit-${key}-srv2.${process.ppid}.ndjson`);
  const foreign = join(dir, `audit-${otherKey}-srv3.${dead}.ndjson`);
  const mine = ownJournalPath(dir, key, 'srv4');
  for (const p of [orphan, alive, foreign, mine]) writeFileSync(p, encodeJournalLine(record(p)));
  holdFile(mine);
  const claimed = claimOrphanJournals(dir, key);
  assert.equal(claimed.length, 1);
  assert.match(claimed[0]!, new RegExp(`audit-${key}-srv1\\.${process.pid}\\.c[0-9a-z]+\\.ndjson$`));
  assert.equal(JSON.parse(readFileSync(claimed[0]!, 'utf8')).id, orphan);
  assert.deepEqual(readdirSync(dir).sort(), [claimed[0]!.slice(dir.length + 1), `audit-${key}-srv2.${process.ppid}.ndjson`, `audit-${otherKey}-srv3.${dead}.ndjson`, mine.slice(dir.length + 1)].sort());
  // This process's own file is claimable once no writer holds it (a pid reused after a restart).
  releaseFile(mine);
  assert.deepEqual(claimOrphanJournals(dir, key).length, 1);
  assert.deepEqual(claimOrphanJournals(join(dir, 'missing'), key), []);
});

test('remove() with an fdatasync pending deletes the name at once: a file opened at the same path right after is a new one and stays', async () => {
  const dir = tempFolder();
  const path = ownJournalPath(dir, 'abcdefabcdef', 'srv');
  const old = JournalFile.open(path, auditJournalCodec);
  old.append(encodeJournalLine(record('a')));
  const synced = old.sync(); // in the thread pool: its callback cannot run before this turn ends
  old.remove();
  assert.equal(existsSync(path), false);
  const fresh = JournalFile.open(path, auditJournalCodec);
  fresh.append(encodeJournalLine(record('b')));
  await synced; // the old descriptor closes now; the new file must survive it
  assert.equal(existsSync(path), true);
  assert.deepEqual(fresh.read(10).items.map((r) => r.id), ['b']);
  fresh.remove();
});

test('rotated journal files get names of their own that orphan claiming still recognizes', () => {
  const dir = tempFolder();
  const first = ownJournalPath(dir, 'abcdefabcdef', 'srv');
  const third = ownJournalPath(dir, 'abcdefabcdef', 'srv', 2);
  assert.notEqual(first, third);
  assert.match(third, /\.r2\.ndjson$/);
  // A dead process's rotated file is claimed like its first one.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const orphan = third.replace(`.${process.pid}.`, `.${dead.stdout}.`);
  writeFileSync(orphan, encodeJournalLine(record('x')));
  const claimed = claimOrphanJournals(dir, 'abcdefabcdef');
  assert.equal(claimed.length, 1);
  assert.equal(existsSync(orphan), false);
});
