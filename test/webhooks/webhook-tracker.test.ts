import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { WebhookTracker, type ChannelDecider } from '../../src/webhooks/webhook-tracker.js';
import { WEBHOOK_EVENT_NAMES } from '../../src/config/webhook-targets.js';
import type { WebhookEvent } from '../../src/webhooks/webhook-event.js';

/** A decider whose answers the test gives, in the order asked. */
class ManualDecider implements ChannelDecider {
  readonly asked: Array<{ what: string; answer: (yes: boolean) => void }> = [];
  joined(channel: string): Promise<boolean> {
    return new Promise((answer) => this.asked.push({ what: `joined ${channel}`, answer }));
  }
  left(channel: string): Promise<boolean> {
    return new Promise((answer) => this.asked.push({ what: `left ${channel}`, answer }));
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const show = (events: WebhookEvent[]): string[] => events.map((e) => `${e.name} ${e.channel ?? '-'} ${e.session ?? '-'}`);

describe('webhook tracker', () => {
  test('events wait, in order, behind a channel event whose decision is pending; a "no" sends nothing', async () => {
    const out: WebhookEvent[] = [];
    const decider = new ManualDecider();
    const t = new WebhookTracker((e) => out.push(e), new Set(WEBHOOK_EVENT_NAMES), decider);
    t.sessionOpened({ id: 's1', userId: 'u' });
    t.subscribed({ id: 's1' }, 'private.a');
    t.subscribed({ id: 's1' }, 'b');
    assert.deepEqual(show(out), ['session_opened - s1']);
    assert.deepEqual(decider.asked.map((a) => a.what), ['joined private.a', 'joined b']);
    assert.equal(t.waiting, 3);
    decider.asked[1]!.answer(true);
    await tick();
    assert.equal(out.length, 1, 'the later decision waits for the earlier one');
    decider.asked[0]!.answer(false);
    await tick();
    assert.deepEqual(show(out), ['session_opened - s1', 'member_added private.a s1', 'channel_occupied b s1']);
    assert.equal(t.waiting, 0);
    await t.idle();
    t.sessionClosed({ id: 's1' });
    decider.asked[2]!.answer(true);
    decider.asked[3]!.answer(true);
    await t.idle();
    assert.deepEqual(show(out).slice(3), ['member_removed private.a s1', 'channel_vacated private.a s1', 'channel_vacated b s1', 'session_closed - s1']);
  });

  test('at most maxWaiting events wait for decisions: the next is dropped and counted', async () => {
    const out: WebhookEvent[] = [];
    const decider = new ManualDecider();
    const t = new WebhookTracker((e) => out.push(e), new Set(WEBHOOK_EVENT_NAMES), decider, null, 3);
    t.sessionOpened({ id: 's', userId: null });
    t.subscribed({ id: 's' }, 'c1');
    t.subscribed({ id: 's' }, 'c2');
    t.subscribed({ id: 's' }, 'c3');
    assert.equal(t.waiting, 3);
    assert.equal(t.dropped, 0);
    t.subscribed({ id: 's' }, 'c4');
    assert.equal(t.waiting, 3);
    assert.equal(t.dropped, 1);
    for (const a of decider.asked) a.answer(true);
    await t.idle();
    assert.deepEqual(show(out).slice(1), ['channel_occupied c1 s', 'channel_occupied c2 s', 'channel_occupied c3 s']);
  });

  test('without a decider the tracker counts: occupied at the first member, vacated after the last', () => {
    const out: WebhookEvent[] = [];
    const t = new WebhookTracker((e) => out.push(e), new Set(['channel_occupied', 'channel_vacated'] as const));
    for (const id of ['x', 'y']) {
      t.sessionOpened({ id, userId: null });
      t.subscribed({ id }, 'room');
    }
    t.subscribed({ id: 'x' }, 'room');
    t.unsubscribed({ id: 'x' }, 'room');
    t.unsubscribed({ id: 'x' }, 'room');
    assert.deepEqual(show(out), ['channel_occupied room x']);
    t.sessionClosed({ id: 'y' });
    t.sessionClosed({ id: 'y' });
    assert.deepEqual(show(out), ['channel_occupied room x', 'channel_vacated room y']);
    assert.equal(t.channelCount, 0);
  });
});
