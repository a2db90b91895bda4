/** The presence sources at their bound, and the hub's member tracking for the Redis hash, without sockets. */
import { ChannelSet } from '../../src/channels/channel-set.js';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { NodesCache } from '../../src/bus/redis-nodes-cache.js';
import { Registry } from '../../src/cluster/registry.js';
import { Hub } from '../../src/channels/hub.js';
import { hubPresence, appendLocalMembers } from '../../src/channels/presence.js';
import type { ChannelMember } from '../../src/channels/member.js';
import type { Bus, BusMessage } from '../../src/bus/bus.js';
import type { Transport } from '../../src/transport/transport.js';
import type { AuditSink } from '../../src/audit/audit-sink.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import type { MemberInfo } from '../../src/protocol/frames.js';

function member(id: string, channels: string[], state: 'open' | 'closed' = 'open'): ChannelMember {
  return {
    id,
    identity: { userId: `u-${id}`, grants: new Set(), exp: null },
    userId: `u-${id}`,
    codec: jsonCodec,
    state,
    channels: ChannelSet.of(channels),
    subscribing: null,
    send: () => undefined,
    write: () => undefined,
    hold: () => undefined,
    release: (first: () => void) => first()
  };
}

/** A bus that records trackMember calls and what is published. */
function recordingBus(): Bus & { tracked: string[]; published: BusMessage[] } {
  const tracked: string[] = [];
  const published: BusMessage[] = [];
  return {
    tracked,
    published,
    publish: (m) => (published.push(m), true),
    remoteCount: () => 0,
    setLocalCount: () => undefined,
    whenSubscribed: () => null,
    onMessage: () => () => undefined,
    trackMember: (type, channel, m) => void tracked.push(`${type} ${channel} ${m.session} ${m.user}`),
    ready: true,
    close: async () => undefined
  };
}

function hubOver(bus: Bus): Hub {
  const transport = { prepare: (bytes: Buffer) => bytes } as unknown as Transport;
  const audit = { record: () => undefined, afterDurable: (f: () => void) => f() } as unknown as AuditSink;
  return new Hub({ transport, bus, audit, channelSecret: null, maxChannelsPerSession: 10 });
}

describe('presence sources', () => {
  test('local members: only open, confirmed members; exactly the limit is not truncated, one more is', () => {
    const set = new Set([member('a', ['x']), member('b', ['x']), member('c', ['x'], 'closed'), member('d', [])]);
    const out: MemberInfo[] = [];
    assert.equal(appendLocalMembers(set, 'x', 2, out), false);
    assert.deepEqual(out, [{ session: 'a', user: 'u-a' }, { session: 'b', user: 'u-b' }]);
    const cut: MemberInfo[] = [];
    assert.equal(appendLocalMembers(set, 'x', 1, cut), true);
    assert.equal(cut.length, 1);
  });

  test('the other nodes: every node\'s members of the channel, bounded across nodes', () => {
    const cache = new NodesCache(async () => ({}), () => undefined);
    cache.delta('n1', 1, ['m:room s1', '"alice"', 'm:room s2', 'null', 'm:other s9', '"x"']);
    cache.delta('n2', 1, ['m:room s3', '"carol"']);
    const out: MemberInfo[] = [];
    assert.equal(cache.appendMembers('room', 3, out), false);
    assert.deepEqual(out.sort((a, b) => a.session.localeCompare(b.session)), [{ session: 's1', user: 'alice' }, { session: 's2', user: null }, { session: 's3', user: 'carol' }]);
    const cut: MemberInfo[] = [{ session: 'local', user: null }];
    assert.equal(cache.appendMembers('room', 3, cut), true, 'one local member leaves room for two of three');
    assert.equal(cut.length, 3);
    cache.delta('n1', 2, ['m:room s1', null]);
    cache.drop('n2');
    const after: MemberInfo[] = [];
    cache.appendMembers('room', 10, after);
    assert.deepEqual(after, [{ session: 's2', user: null }]);
  });

  test('the agent registry: members by channel, bounded; closed sessions and exited workers leave it, each told once', () => {
    const r = new Registry();
    const told: string[] = [];
    r.onMembership = (type, channel, m) => void told.push(`${type} ${channel} ${m.session}`);
    r.addWorker(1, 0, 101);
    r.addWorker(2, 1, 102);
    for (const [w, id] of [[1, 'a'], [2, 'b'], [2, 'c']] as const) {
      r.sessionOpened(w, { id, remoteAddr: '127.0.0.1', user: `u-${id}`, protocol: 'json', connectedAt: 0 });
      r.subscribed(w, id, 'room');
    }
    r.subscribed(2, 'b', 'room'); // a repeat is not told again
    const out: MemberInfo[] = [];
    assert.equal(r.appendMembers('room', 3, out), false);
    assert.equal(out.length, 3);
    assert.equal(r.appendMembers('room', 2, []), true);
    r.sessionClosed(1, 'a');
    r.removeWorker(2);
    assert.equal(r.appendMembers('room', 3, []), false);
    assert.deepEqual(told, ['joined room a', 'joined room b', 'joined room c', 'left room a', 'left room b', 'left room c']);
  });

  test('the hub tells the bus of public members (joined when confirmed, left on unsubscribe and close); private ones go as notices', async () => {
    const bus = recordingBus();
    const hub = hubOver(bus);
    const a = member('a', []);
    hub.add(a);
    hub.subscribe(a, 'lobby', undefined);
    hub.subscribe(a, 'news', undefined);
    const admin = { ...member('p', []), identity: { userId: 'u-p', grants: new Set(['private'] as const), exp: null } } as ChannelMember;
    hub.add(admin);
    hub.subscribe(admin, 'private.x', undefined);
    assert.deepEqual((await hubPresence(hub, null).members('lobby', 10))?.members, [{ session: 'a', user: 'u-a' }]);
    hub.unsubscribe(a, 'lobby');
    hub.remove(a, 1000);
    hub.remove(admin, 1000);
    assert.deepEqual(bus.tracked, ['joined lobby a u-a', 'joined news a u-a', 'left lobby a u-a', 'left news a u-a']);
    assert.deepEqual(bus.published.map((m) => `${m.frame.type} ${m.channel}`), ['joined private.x', 'left private.x']);
  });
});
