/** The Subscription's bookkeeping without a server: duplicates dropped by offset, positions, recovery notices. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subscription, type SubscriptionHost } from '../../src/client/subscription.js';
import type { ChannelEvent } from '../../src/client/wire.js';

const host: SubscriptionHost = {
  history: () => Promise.reject(new Error('unused')),
  presence: () => Promise.reject(new Error('unused')),
  unsubscribe: () => undefined
};
const ev = (offset: number, epoch = 'e1'): ChannelEvent => ({ channel: 'news', data: offset, from: null, id: `id-${offset}`, offset, epoch });

test('an offset already delivered in the same epoch is dropped and counted, the rest kept in order', () => {
  const sub = new Subscription('news', host);
  const got: unknown[] = [];
  sub.on('event', (e) => got.push(e.data));
  sub.handleSubscribed({ offset: 0, epoch: 'e1' }, undefined);
  for (const o of [1, 2, 3, 2, 3, 4, 1, 5]) sub.handleEvent(ev(o));
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  assert.equal(sub.duplicates, 3);
  assert.deepEqual(sub.position, { offset: 5, epoch: 'e1' });
});

test('a new epoch is not a duplicate: its low offsets are delivered, after an `unrecovered` notice', () => {
  const sub = new Subscription('news', host);
  const got: unknown[] = [];
  sub.on('event', (e) => got.push(`${e.epoch}:${e.offset}`));
  sub.on('unrecovered', (u) => got.push(u));
  sub.handleEvent(ev(7));
  sub.handleEvent(ev(1, 'e2'));
  sub.handleEvent(ev(1, 'e2'));
  assert.deepEqual(got, ['e1:7', { reason: 'epoch', since: { offset: 7, epoch: 'e1' }, offset: 0, epoch: 'e2' }, 'e2:1']);
});

test('skipped offsets are no gap (the session\'s own broadcasts are never sent back): delivered, no notice', () => {
  const sub = new Subscription('news', host);
  const got: unknown[] = [];
  sub.on('event', (e) => got.push(e.offset));
  sub.on('unrecovered', (u) => got.push(u));
  sub.handleSubscribed({ offset: 4, epoch: 'e1' }, undefined);
  sub.handleEvent(ev(5));
  sub.handleEvent(ev(9));
  assert.deepEqual(got, [5, 9]);
});

test('a resubscribe answered without `recovered` (the server could not tell) counts as not recovered', () => {
  const sub = new Subscription('news', host);
  sub.handleSubscribed({ offset: 0, epoch: 'e1' }, undefined);
  sub.handleEvent(ev(1));
  const seen: unknown[] = [];
  sub.on('unrecovered', (u) => seen.push(u));
  sub.handleSubscribed({}, { offset: 1, epoch: 'e1' });
  assert.deepEqual(seen, [{ reason: 'unconfirmed', since: { offset: 1, epoch: 'e1' } }]);
  assert.equal(sub.position, null);
  const got: number[] = [];
  sub.on('event', (e) => got.push(e.offset!));
  sub.handleEvent(ev(1, 'e9'));
  assert.deepEqual(got, [1], 'the next event starts the position afresh, without another notice');
  assert.equal(seen.length, 1);
});

test('events without a position (older servers, `*`) are all delivered', () => {
  const sub = new Subscription('news', host);
  let n = 0;
  sub.on('event', () => n++);
  for (let i = 0; i < 3; i++) sub.handleEvent({ channel: 'news', data: i, from: null, id: 'x' });
  assert.equal(n, 3);
  assert.equal(sub.position, null);
});

test('the position to resume from: where a plain subscribe started until an event arrives', () => {
  const sub = new Subscription('news', host);
  assert.equal(sub.sinceForResubscribe(), undefined);
  sub.handleSubscribed({ offset: 41, epoch: 'e1' }, undefined);
  assert.deepEqual(sub.sinceForResubscribe(), { offset: 41, epoch: 'e1' });
  // An event sent while the subscription was routed may carry an offset at or below the start: kept.
  const got: number[] = [];
  sub.on('event', (e) => got.push(e.offset!));
  sub.handleEvent(ev(41));
  sub.handleEvent(ev(42));
  assert.deepEqual(got, [41, 42]);
  assert.deepEqual(sub.sinceForResubscribe(), { offset: 42, epoch: 'e1' });
});

test('recovered:false is an `unrecovered` event and moves the position to the new one', () => {
  const sub = new Subscription('news', host);
  sub.handleSubscribed({ offset: 10, epoch: 'e1' }, undefined);
  sub.handleEvent(ev(11));
  const seen: unknown[] = [];
  sub.on('unrecovered', (u) => seen.push(u));
  sub.on('subscribed', (s) => seen.push(s));
  sub.handleSubscribed({ recovered: false, offset: 3, epoch: 'e2' }, { offset: 11, epoch: 'e1' });
  assert.deepEqual(seen, [
    { resubscribed: true, recovered: false, offset: 3, epoch: 'e2' },
    { reason: 'server', since: { offset: 11, epoch: 'e1' }, offset: 3, epoch: 'e2' }
  ]);
  assert.deepEqual(sub.position, { offset: 3, epoch: 'e2' });
  const got: number[] = [];
  sub.on('event', (e) => got.push(e.offset!));
  sub.handleEvent(ev(4, 'e2'));
  assert.deepEqual(got, [4]);
});

test('recovered:true keeps the last offset, so the replay is deduplicated against what was delivered', () => {
  const sub = new Subscription('news', host);
  const got: number[] = [];
  sub.on('event', (e) => got.push(e.offset!));
  sub.handleSubscribed({ offset: 0, epoch: 'e1' }, undefined);
  sub.handleEvent(ev(1));
  sub.handleEvent(ev(2));
  let unrecovered = 0;
  sub.on('unrecovered', () => unrecovered++);
  sub.handleSubscribed({ recovered: true, offset: 5, epoch: 'e1' }, { offset: 2, epoch: 'e1' });
  for (const o of [2, 3, 4, 5, 5, 6]) sub.handleEvent(ev(o));
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
  assert.equal(unrecovered, 0);
});
