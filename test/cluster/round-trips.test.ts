import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RoundTrips } from '../../src/cluster/round-trips.js';
import { waitFor } from '../helpers/wait.js';

/** A link whose syncs are answered by hand; `writes` moves when the test says the turn's write went out. */
function fakeLink(): { writes: number; starts: number[]; answer(ok?: boolean): void; start(): Promise<boolean> } {
  const waiting: Array<(ok: boolean) => void> = [];
  return {
    writes: 0,
    starts: [],
    answer(ok = true) {
      waiting.shift()!(ok);
    },
    start() {
      this.starts.push(performance.now());
      return new Promise((resolve) => waiting.push(resolve));
    }
  };
}

describe('RoundTrips (sync rounds to one process, group-committed)', () => {
  test('one round in flight; every ask meanwhile shares the next, which starts once the first is answered and the interval has passed', async () => {
    const link = fakeLink();
    const rounds = new RoundTrips(() => link.start(), () => link.writes, 30);
    const first = rounds.ask();
    assert.equal(rounds.ask(), first, 'the round is not written yet: an ask now is covered by it');
    link.writes++;
    const second = rounds.ask();
    const third = rounds.ask();
    assert.notEqual(second, first, 'written already: a later ask needs the next round');
    assert.equal(third, second, 'asks while a round is in flight share the next one');
    assert.equal(link.starts.length, 1);
    link.answer();
    assert.equal(await first, true);
    await waitFor('the next round', () => link.starts.length === 2);
    assert.ok(link.starts[1]! - link.starts[0]! >= 29, `rounds ${link.starts[1]! - link.starts[0]!} ms apart`);
    link.writes++;
    link.answer(false);
    assert.deepEqual(await Promise.all([second, third]), [false, false], 'a round that got no answer says so');
    assert.equal(rounds.idle, true);
  });

  test('an ask when no round started within the interval starts one at once', async () => {
    const link = fakeLink();
    const rounds = new RoundTrips(() => link.start(), () => link.writes, 0);
    const a = rounds.ask();
    link.writes++;
    link.answer();
    await a;
    const b = rounds.ask();
    assert.equal(link.starts.length, 2, 'started in the same turn');
    link.answer();
    assert.equal(await b, true);
  });
});
