import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExpirySchedule } from '../../src/session/expiry-schedule.js';
import { waitFor } from '../helpers/wait.js';

test('keys expire once each, earliest first; deleted keys never; moved keys at their new deadline', async () => {
  let clock = 1_000_000;
  const expired: number[] = [];
  const s = new ExpirySchedule<number>((k) => expired.push(k), () => clock);
  // Deadline of key k: a shuffled order, all in the future of the fake clock.
  const deadline = (k: number) => clock + 1 + ((k * 7919) % 1000);
  for (let k = 0; k < 1000; k++) s.set(k, deadline(k));
  for (let k = 0; k < 1000; k += 3) s.delete(k);
  for (let k = 1; k < 1000; k += 5) if (k % 3 !== 0) s.set(k, clock + 1500); // moved beyond the first sweep
  assert.equal(s.size, 1000 - 334);
  const first = new Set<number>();
  for (let k = 0; k < 1000; k++) if (k % 3 !== 0 && k % 5 !== 1) first.add(k);

  clock += 1001; // every unmoved deadline has passed; the timer (armed for real ms) fires soon
  await waitFor('the first sweep', () => expired.length === first.size);
  assert.deepEqual(new Set(expired), first);
  for (let i = 1; i < expired.length; i++) assert.ok(deadline(expired[i - 1]!) <= deadline(expired[i]!), 'earliest first');
  assert.equal(s.size, 1000 - 334 - first.size);

  clock += 1500;
  s.set(-1, clock); // a change re-arms the timer
  await waitFor('the moved keys', () => s.size === 0);
  assert.equal(expired.length, 1000 - 334 + 1);
  assert.equal(new Set(expired).size, expired.length, 'each key once');
  s.stop();
});

test('a stopped schedule fires nothing, and deleting an absent key is a no-op', async () => {
  const expired: string[] = [];
  const s = new ExpirySchedule<string>((k) => expired.push(k));
  s.delete('absent');
  s.set('a', Date.now() + 60_000);
  s.set('b', Date.now());
  await waitFor('b expired', () => expired.length === 1);
  assert.deepEqual(expired, ['b']);
  s.stop();
  s.set('c', Date.now());
  assert.equal(s.size, 2);
  assert.deepEqual(expired, ['b']);
});
