import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TEST_CHANNEL_SECRET, type TestServer } from '../helpers/server.js';
import { makeToken } from '../helpers/tokens.js';
import { signChannel } from '../../src/auth/channel-signature.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { assertSequence, connect, eventsOf, publishMany, subscribeAt, takeEvents } from './history-helpers.js';

describe('positions, history and recovery on zenconn serve', () => {
  let srv: TestServer;
  let publisher: string;
  before(async () => {
    // Without the audit trail: the hot window alone (audit-history.integration.test.ts reaches past it).
    srv = await startServer({ 'history-size': '50', 'recovery-max': '30', audit: false });
    publisher = await makeToken('backend', ['publish']);
  });
  after(() => srv.stop());

  test('every event on a channel has the next offset and one epoch, the same for every recipient and both protocols; * has none', async () => {
    const a = await connect(srv.port);
    const b = await connect(srv.port, undefined, 'bin');
    const pub = await connect(srv.port, publisher);
    const s = await subscribeAt(a, 'seq');
    assert.equal(s.type, 'subscribed');
    assert.equal(s.offset, 0);
    assert.equal(typeof s.epoch, 'string');
    const sb = await subscribeAt(b, 'seq');
    assert.deepEqual([sb.offset, sb.epoch], [0, s.epoch]);
    await publishMany(pub, 'seq', 20);
    const ea = await takeEvents(a, 'seq', 20);
    const eb = await takeEvents(b, 'seq', 20);
    assertSequence(ea, 1, s.epoch!, 'json');
    assertSequence(eb, 1, s.epoch!, 'bin');
    assert.deepEqual(ea.map((e) => e.id), eb.map((e) => e.id));
    // A later subscriber starts where the channel is.
    const c = await connect(srv.port);
    assert.equal((await subscribeAt(c, 'seq')).offset, 20);
    const adm = await connect(srv.port, await makeToken('boss', ['broadcast']));
    adm.send({ type: 'broadcast', channel: '*', data: 'all' });
    const all = (await a.next((f) => f.type === 'event' && f.channel === '*')) as Extract<ServerFrame, { type: 'event' }>;
    assert.equal(all.offset, undefined);
    assert.equal(all.epoch, undefined);
    for (const x of [a, b, c, pub, adm]) await x.close();
  });

  test('history: the events after since, bounded by limit, complete says whether any is missing', async () => {
    const pub = await connect(srv.port, publisher);
    await publishMany(pub, 'hist', 10);
    const a = await connect(srv.port);
    a.send({ type: 'history', channel: 'hist', since: null, limit: null });
    const all = await a.nextOf('history');
    assert.equal(all.events.length, 10);
    assert.equal(all.offset, 10);
    assert.equal(all.complete, true);
    assertSequence(all.events, 1, all.epoch);
    assert.deepEqual(all.events.map((e) => e.data), Array.from({ length: 10 }, (_, n) => ({ n })));
    a.send({ type: 'history', channel: 'hist', since: { offset: 4, epoch: all.epoch }, limit: 3 });
    const cut = await a.nextOf('history');
    assertSequence(cut.events, 5, all.epoch);
    assert.equal(cut.events.length, 3);
    assert.equal(cut.complete, false);
    a.send({ type: 'history', channel: 'hist', since: { offset: 4, epoch: all.epoch }, limit: 6 });
    const rest = await a.nextOf('history');
    assert.equal(rest.events.length, 6);
    assert.equal(rest.complete, true);
    a.send({ type: 'history', channel: 'hist', since: { offset: 4, epoch: 'other' }, limit: 6 });
    const other = await a.nextOf('history');
    assert.deepEqual([other.events.length, other.complete, other.offset, other.epoch], [0, false, 10, all.epoch]);
    // The same in binary.
    const b = await connect(srv.port, undefined, 'bin');
    b.send({ type: 'history', channel: 'hist', since: { offset: 8, epoch: all.epoch }, limit: 100 });
    const bin = await b.nextOf('history');
    assertSequence(bin.events, 9, all.epoch);
    assert.equal(bin.complete, true);
    for (const x of [a, b, pub]) await x.close();
  });

  test('history limits at their edge: --history-size keeps 50 events, limit 1..10000', async () => {
    const pub = await connect(srv.port, publisher);
    await publishMany(pub, 'edge', 51);
    const a = await connect(srv.port);
    a.send({ type: 'history', channel: 'edge', since: null, limit: 10000 });
    const h = await a.nextOf('history');
    assert.equal(h.events.length, 30, 'bounded by --recovery-max');
    a.send({ type: 'history', channel: 'edge', since: { offset: 1, epoch: h.epoch }, limit: 30 });
    const fromTwo = await a.nextOf('history');
    assertSequence(fromTwo.events, 2, h.epoch);
    assert.equal(fromTwo.complete, false, '30 of 50 after offset 1');
    a.send({ type: 'history', channel: 'edge', since: { offset: 0, epoch: h.epoch }, limit: 30 });
    const fromOne = await a.nextOf('history');
    assert.equal(fromOne.events[0]!.offset, 2, 'offset 1 fell out of the 50-event window');
    assert.equal(fromOne.complete, false);
    a.sendRaw(JSON.stringify({ type: 'history', channel: 'edge', limit: 0 }));
    assert.deepEqual(await a.nextOf('error'), { type: 'error', channel: 'edge', errors: ['invalid limit'] });
    a.sendRaw(JSON.stringify({ type: 'history', channel: 'edge', limit: 10001 }));
    assert.deepEqual(await a.nextOf('error'), { type: 'error', channel: 'edge', errors: ['invalid limit'] });
    a.sendRaw(JSON.stringify({ type: 'history', channel: 'edge', since: { offset: -1, epoch: 'x' } }));
    assert.deepEqual(await a.nextOf('error'), { type: 'error', channel: 'edge', errors: ['invalid since'] });
    for (const x of [a, pub]) await x.close();
  });

  test('history of a private channel: refused to a non-member without the grant, given to a member and to the private grant', async () => {
    const ch = 'private.hist';
    const pub = await connect(srv.port, publisher);
    await publishMany(pub, ch, 3);
    const stranger = await connect(srv.port);
    stranger.send({ type: 'history', channel: ch, since: null, limit: null });
    assert.deepEqual(await stranger.nextOf('error'), { type: 'error', channel: ch, errors: ['forbidden'] });
    const member = await connect(srv.port);
    assert.equal((await subscribeAt(member, ch, undefined, signChannel(TEST_CHANNEL_SECRET, member.sessionId, ch))).type, 'subscribed');
    member.send({ type: 'history', channel: ch, since: null, limit: null });
    assert.equal((await member.nextOf('history')).events.length, 3);
    const granted = await connect(srv.port, await makeToken('ops', ['private']));
    granted.send({ type: 'history', channel: ch, since: null, limit: null });
    assert.equal((await granted.nextOf('history')).events.length, 3);
    // Recovery on a private channel is refused as a subscribe is.
    const other = await connect(srv.port);
    assert.equal((await subscribeAt(other, ch, { offset: 0, epoch: 'x' })).type, 'unauthorized');
    for (const x of [pub, stranger, member, granted, other]) await x.close();
  });

  test('recovery: a subscriber back with since gets recovered:true, the missed events in order, then live ones', async () => {
    const pub = await connect(srv.port, publisher);
    const a = await connect(srv.port);
    const s = await subscribeAt(a, 'rec');
    await publishMany(pub, 'rec', 5);
    const seen = await takeEvents(a, 'rec', 5);
    await a.close();
    await publishMany(pub, 'rec', 7, 5);
    const back = await connect(srv.port, undefined, 'bin');
    const r = await subscribeAt(back, 'rec', { offset: seen[4]!.offset!, epoch: s.epoch! });
    assert.deepEqual([r.recovered, r.offset, r.epoch], [true, 12, s.epoch]);
    const missed = await takeEvents(back, 'rec', 7);
    assertSequence(missed, 6, s.epoch!);
    assert.deepEqual(missed.map((e) => e.data), Array.from({ length: 7 }, (_, i) => ({ n: 5 + i })));
    await publishMany(pub, 'rec', 1, 12);
    assertSequence(await takeEvents(back, 'rec', 1), 13, s.epoch!);
    // Nothing missed: recovered with no replay.
    const again = await connect(srv.port);
    const r2 = await subscribeAt(again, 'rec', { offset: 13, epoch: s.epoch! });
    assert.deepEqual([r2.recovered, r2.offset], [true, 13]);
    assert.deepEqual(await again.quiet(100), []);
    for (const x of [pub, back, again]) await x.close();
  });

  test('recovery refused: another epoch, a gap past the window, more than --recovery-max → recovered:false at the current position', async () => {
    const pub = await connect(srv.port, publisher);
    await publishMany(pub, 'gap', 60);
    const a = await connect(srv.port);
    const epoch = (await subscribeAt(a, 'gap')).epoch!;
    const cases: Array<[number, string, string]> = [
      [59, 'not-the-epoch', 'another epoch'],
      [5, epoch, 'older than the 50-event window'],
      [29, epoch, '31 events > --recovery-max 30']
    ];
    for (const [offset, e, why] of cases) {
      const c = await connect(srv.port);
      const r = await subscribeAt(c, 'gap', { offset, epoch: e });
      assert.deepEqual([r.recovered, r.offset, r.epoch], [false, 60, epoch], why);
      assert.deepEqual(eventsOf(c, 'gap'), [], why);
      await c.close();
    }
    // 30 events: exactly --recovery-max, recovered.
    const edge = await connect(srv.port);
    const r = await subscribeAt(edge, 'gap', { offset: 30, epoch });
    assert.deepEqual([r.recovered, r.offset], [true, 60]);
    assertSequence(await takeEvents(edge, 'gap', 30), 31, epoch);
    for (const x of [pub, a, edge]) await x.close();
  });

  test('the seam: recovering while events keep coming delivers each offset once, in order', async () => {
    // A server of its own whose window and recovery bound hold all 210 events, so the
    // recovery succeeds however many of the 200 concurrent ones come before the subscribe
    // (under load that number varies; the shared server's bounds are 50 and 30).
    const own = await startServer({ 'history-size': '1000', 'recovery-max': '1000', audit: false });
    try {
      const pub = await connect(own.port, publisher);
      const first = await connect(own.port);
      const s = await subscribeAt(first, 'seam');
      await first.close();
      await publishMany(pub, 'seam', 10);
      const back = await connect(own.port);
      // Publishing goes on while the subscribe with since is handled.
      const sending = publishMany(pub, 'seam', 200, 10);
      const r = await subscribeAt(back, 'seam', { offset: 0, epoch: s.epoch! });
      assert.equal(r.recovered, true);
      await sending;
      const got = await takeEvents(back, 'seam', 210);
      assertSequence(got, 1, s.epoch!);
      assert.deepEqual(await back.quiet(100), []);
      for (const x of [pub, back]) await x.close();
    } finally {
      await own.stop();
    }
  });

  test('frames in both encodings: event and subscribed carry the position, history answers [15, …]', () => {
    const ev = { type: 'event', channel: 'news', data: 1, from: null, id: '01890a5d-ac96-774b-bcce-b302099a8057', offset: 7, epoch: 'e1' } as const;
    assert.equal(jsonCodec.encode(ev).toString(), '{"type":"event","channel":"news","data":1,"from":null,"id":"01890a5d-ac96-774b-bcce-b302099a8057","offset":7,"epoch":"e1"}');
    assert.equal(jsonCodec.encode({ type: 'subscribed', channel: 'news', recovered: true, offset: 7, epoch: 'e1' }).toString(), '{"type":"subscribed","channel":"news","recovered":true,"offset":7,"epoch":"e1"}');
    assert.equal(binaryCodec.encode({ type: 'subscribed', channel: 'news', recovered: true, offset: 7, epoch: 'e1' }).toString('hex'), '9502a46e657773c307a26531');
    assert.equal(binaryCodec.encode({ type: 'history', channel: 'news', events: [], offset: 7, epoch: 'e1', complete: true }).toString('hex'), '960fa46e6577739007a26531c3');
  });
});
