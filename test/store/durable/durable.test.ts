import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { JournalFile, setAside, type JournalCodec } from '../../../src/store/durable/journal-file.js';
import { claimOrphans, holdFile, ownFilePath, releaseFile } from '../../../src/store/durable/journal-claim.js';
import { isPermanentError, writeIsolating } from '../../../src/store/durable/permanent-error.js';
import { replayFile } from '../../../src/store/durable/replay.js';
import { RetryPolicy } from '../../../src/store/durable/retry-policy.js';
import { Waiters } from '../../../src/store/durable/waiters.js';

/** A record type the durable queue knows nothing about: it is generic. */
interface Item {
  n: number;
}
const codec: JournalCodec<Item> = {
  encode: (i) => JSON.stringify({ n: i.n }) + '\n',
  decode: (line) => {
    const o = JSON.parse(line) as { n?: unknown };
    if (typeof o.n !== 'number') throw new Error('bad');
    return { n: o.n };
  }
};
// The policy's timers are unref'd (they must not hold a stopping process): keep this one alive.
let keepAlive: NodeJS.Timeout;
before(() => (keepAlive = setInterval(() => undefined, 1000)));
after(() => clearInterval(keepAlive));
const dir = (): string => mkdtempSync(join(tmpdir(), 'zenconn-durable-'));
const deadPid = (): number => spawnSync(process.execPath, ['-e', '0']).pid!;

test('a journal file keeps appended and buffered lines in order, reads them back from the committed offset and counts what is left', () => {
  const path = join(dir(), 'sub', 'a.ndjson');
  const file = JournalFile.open(path, codec, true);
  file.append(codec.encode({ n: 1 }) + codec.encode({ n: 2 }));
  file.buffer(codec.encode({ n: 3 }));
  assert.equal(file.remaining, 3);
  assert.equal(file.drained, false);
  const first = file.read(2);
  assert.deepEqual(first.items, [{ n: 1 }, { n: 2 }]);
  file.commit(first);
  assert.equal(file.remaining, 1);
  const rest = file.read(10);
  assert.deepEqual(rest.items, [{ n: 3 }]);
  file.commit(rest);
  assert.equal(file.drained, true);
  file.close();
  // Reopened, the count of lines comes from the file.
  const again = JournalFile.open(path, codec, true);
  assert.equal(again.remaining, 3);
  again.remove();
  assert.equal(existsSync(path), false);
});

test('next() hands bad lines over, skips reads holding only bad lines, and returns null at the end', () => {
  const path = join(dir(), 'b.ndjson');
  writeFileSync(path, 'garbage\n{"n":"x"}\n{"n":7}\n{"n":8}');
  const file = JournalFile.open(path, codec);
  const bad: string[] = [];
  const read = file.next(2, (l) => bad.push(l));
  assert.deepEqual(bad, ['garbage', '{"n":"x"}']);
  assert.deepEqual(read?.items, [{ n: 7 }, { n: 8 }]);
  file.commit(read!);
  assert.equal(file.next(2, (l) => bad.push(l)), null);
  file.close();
});

test('orphans are claimed by rename, oldest first, only when their process is gone and no journal here holds them', () => {
  const d = dir();
  const dead = deadPid();
  const orphan = join(d, `x-a.${dead}.ndjson`);
  const alive = join(d, `x-b.${process.ppid}.ndjson`);
  const other = join(d, `y-c.${dead}.ndjson`);
  const mine = ownFilePath(d, 'x-d');
  for (const p of [orphan, alive, other, mine]) writeFileSync(p, '{"n":1}\n');
  holdFile(mine);
  const claimed = claimOrphans(d, (stem) => stem.startsWith('x-'));
  assert.equal(claimed.length, 1);
  assert.match(claimed[0]!, new RegExp(`x-a\\.${process.pid}\\.c[0-9a-z]+\\.ndjson$`));
  assert.equal(existsSync(orphan), false);
  assert.equal(existsSync(other), true);
  // Held: a second claim in this process does not take it again; released, it does.
  assert.deepEqual(claimOrphans(d, (stem) => stem.startsWith('x-')), []);
  releaseFile(mine);
  releaseFile(claimed[0]!);
  assert.equal(claimOrphans(d, (stem) => stem.startsWith('x-')).length, 2);
  assert.deepEqual(claimOrphans(join(d, 'missing'), () => true), []);
});

test('ownFilePath names rotations apart; setAside appends lines to a file of their own', () => {
  const d = dir();
  assert.match(ownFilePath(d, 's', 2), new RegExp(`s\\.${process.pid}\\.r2\\.ndjson$`));
  const rejected = join(d, 'r', 's.rejected.ndjson');
  setAside(rejected, '{"n":1}');
  setAside(rejected, '{"n":2}\n');
  assert.equal(readFileSync(rejected, 'utf8'), '{"n":1}\n{"n":2}\n');
});

test('one rule for permanent errors: malformed records and data/constraint codes, not connection failures', () => {
  assert.equal(isPermanentError(new RangeError('Invalid time value')), true);
  assert.equal(isPermanentError(new TypeError('cannot bind')), true);
  assert.equal(isPermanentError(Object.assign(new Error('x'), { code: '23505' })), true);
  assert.equal(isPermanentError(Object.assign(new Error('x'), { code: '22P02' })), true);
  assert.equal(isPermanentError(Object.assign(new Error('x'), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' })), true);
  assert.equal(isPermanentError(Object.assign(new Error('x'), { code: 'ECONNRESET' })), false);
  assert.equal(isPermanentError(Object.assign(new Error('x'), { code: '57P01' })), false);
  assert.equal(isPermanentError(new Error('timeout')), false);
  assert.equal(isPermanentError(null), false);
});

test('writeIsolating sets aside only the refused records; a transient error retries the whole batch', async () => {
  const written: number[] = [];
  const rejected: number[] = [];
  const write = async (items: readonly Item[]): Promise<void> => {
    if (items.some((i) => i.n < 0)) throw Object.assign(new Error('check'), { code: '23514' });
    written.push(...items.map((i) => i.n));
  };
  await writeIsolating([{ n: 1 }, { n: -2 }, { n: 3 }], write, (i) => rejected.push(i.n));
  assert.deepEqual(written, [1, 3]);
  assert.deepEqual(rejected, [-2]);
  const down = async (): Promise<void> => {
    throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' });
  };
  await assert.rejects(writeIsolating([{ n: 1 }], down, () => assert.fail('not a rejection')), /down/);
});

test('the retry policy doubles its delay up to the cap, starts over on success and logs a failure once', () => {
  const lines: string[] = [];
  const log = (level: string) => (_: object, msg: string) => lines.push(`${level} ${msg}`);
  const retry = new RetryPolicy({ minMs: 10, maxMs: 35, recoveredMsg: 'back', logger: { info: log('info'), warn: log('warn'), error: log('error') } });
  assert.deepEqual([retry.nextDelay(), retry.nextDelay(), retry.nextDelay(), retry.nextDelay()], [10, 20, 35, 35]);
  retry.failed(new Error('x'), 'down');
  retry.failed(new Error('x'), 'down');
  assert.equal(retry.healthy, false);
  retry.succeeded();
  assert.equal(retry.healthy, true);
  assert.equal(retry.delay, 10);
  assert.deepEqual(lines, ['error down', 'info back']);
});

test('wake() ends a backoff at once, and hurry() shortens the ones that follow', async () => {
  const retry = new RetryPolicy({ minMs: 60_000, maxMs: 60_000, recoveredMsg: 'back' });
  let woke = false;
  const sleeping = retry.sleep(60_000).then(() => (woke = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, false);
  retry.wake();
  await sleeping;
  const done = retry.hurry();
  await retry.backoff(); // a minute-long delay, cut to a few milliseconds while hurried
  done();
});

test('waiters resolve when notified with their condition true, and with false at their timeout', async () => {
  const w = new Waiters();
  let state = false;
  const waiting = w.until(() => state, 60_000);
  w.notify(); // still false: keeps waiting
  state = true;
  w.notify();
  assert.equal(await waiting, true);
  assert.equal(await w.until(() => false, 1), false);
  assert.equal(await w.until(() => true, 0), true);
});

test('replayFile writes a file in chunks, retrying a failed write, and stops when told to', async () => {
  const d = dir();
  const path = join(d, 'r.ndjson');
  writeFileSync(path, [1, 2, 3, 4, 5].map((n) => codec.encode({ n })).join(''));
  const retry = new RetryPolicy({ minMs: 1, maxMs: 1, recoveredMsg: 'back' });
  const got: number[][] = [];
  let failOnce = true;
  const file = JournalFile.open(path, codec);
  const done = await replayFile(file, {
    max: 2,
    write: async (items) => {
      if (failOnce) {
        failOnce = false;
        throw new Error('down');
      }
      got.push(items.map((i) => i.n));
    },
    retry,
    failMsg: 'down',
    onBad: () => assert.fail('no bad line'),
    stopped: () => false
  });
  assert.deepEqual(done, { items: 5, complete: true });
  assert.deepEqual(got, [[1, 2], [3, 4], [5]]);
  assert.equal(file.drained, true);
  const stopped = await replayFile(JournalFile.open(path, codec), { max: 2, write: async () => undefined, retry, failMsg: 'x', onBad: () => undefined, stopped: () => true });
  assert.deepEqual(stopped, { items: 0, complete: false });
  file.remove();
  assert.deepEqual(readdirSync(d), []);
});
