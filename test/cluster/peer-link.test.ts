import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { socketPair } from '../helpers/socket-pair.js';
import { serialize } from 'node:v8';
import { IpcBus } from '../../src/cluster/ipc-bus.js';
import { AgentLink } from '../../src/cluster/agent-link.js';
import { PeerLink, MAX_PEER_UNSENT_BATCHES, MAX_PEER_RECORD_BYTES, type PeerControl, type PeerLinkHandler } from '../../src/cluster/peer-link.js';
import type { BusMessage } from '../../src/bus/bus.js';
import type { IpcBatch, WorkerItem } from '../../src/cluster/ipc-messages.js';
import { waitFor } from '../helpers/wait.js';


/** An agent that confirms every sync at once (the peers are what is under test). */
class AgentFake extends EventEmitter {
  connected = true;
  send = (message: never, _h?: undefined, _o?: undefined, cb?: (err: Error | null) => void): boolean => {
    const items = (message as IpcBatch<WorkerItem>).items;
    const synced = items.filter((i) => i.t === 'sync').map((i) => ({ t: 'synced' as const, id: (i as { id: number }).id }));
    if (synced.length > 0) setImmediate(() => this.emit('message', { t: 'batch', items: synced }));
    cb?.(null);
    return true;
  };
}

function record(kind: number, body: Uint8Array): Buffer {
  const r = Buffer.alloc(5 + body.length);
  r.writeUInt32BE(body.length, 0);
  r[4] = kind;
  r.set(body, 5);
  return r;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
/**
 * A message the peer links carry: a member notice (events on a channel go through the
 * agent, their sequencer, since they have positions: agent-sequencer.ts).
 */
const msg = (channel: string, data: unknown): BusMessage => ({ channel, frame: { type: 'joined', channel, data: { session: 'x', user: JSON.stringify(data) } }, exclude: null });

/** What a raw PeerLink end received. */
function recorder(): PeerLinkHandler & { payloads: Uint8Array[]; controls: PeerControl[]; isClosed: boolean } {
  const r = {
    payloads: [] as Uint8Array[],
    controls: [] as PeerControl[],
    isClosed: false,
    deliver: (p: Uint8Array) => r.payloads.push(Buffer.from(p)),
    control: (c: PeerControl) => r.controls.push(c),
    closed: () => (r.isClosed = true)
  };
  return r;
}

describe('PeerLink (a direct link between two workers)', () => {
  test('records arrive whole and in order when the stream is cut at every byte', async () => {
    const [a, b] = await socketPair();
    const got = recorder();
    new PeerLink(1, b, got);
    const bytes = Buffer.concat([
      record(1, new Uint8Array([7, 8, 9])),
      record(2, serialize({ t: 'count', channel: 'c', count: 2 })),
      record(1, new Uint8Array(0)),
      record(2, serialize({ t: 'sync', id: 5 }))
    ]);
    a.setNoDelay(true);
    for (const byte of bytes) {
      a.write(Buffer.from([byte]));
      await tick();
    }
    await waitFor('four records', () => got.payloads.length + got.controls.length === 4);
    assert.deepEqual(got.payloads.map((p) => [...p]), [[7, 8, 9], []]);
    assert.deepEqual(got.controls, [{ t: 'count', channel: 'c', count: 2 }, { t: 'sync', id: 5 }]);
    a.destroy();
    await waitFor('close', () => got.isClosed);
  });

  test('a record of 4 MiB arrives whole, between two small ones', async () => {
    const [a, b] = await socketPair();
    const got = recorder();
    new PeerLink(1, b, got);
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
    a.write(Buffer.concat([record(1, new Uint8Array([1])), record(1, big), record(1, new Uint8Array([2]))]));
    await waitFor('three records', () => got.payloads.length === 3, 5000);
    assert.deepEqual([...got.payloads[0]!], [1]);
    assert.ok(Buffer.compare(got.payloads[1]! as Buffer, big) === 0);
    assert.deepEqual([...got.payloads[2]!], [2]);
    a.destroy();
  });

  test('one write per turn: counts coalesced per channel and first, then records in order', async () => {
    const [a, b] = await socketPair();
    const link = new PeerLink(1, a, recorder());
    const got = recorder();
    new PeerLink(2, b, got);
    link.deliver(new Uint8Array([1]));
    link.control({ t: 'count', channel: 'c', count: 1 });
    link.control({ t: 'sync', id: 1 });
    link.control({ t: 'count', channel: 'c', count: 3 });
    link.deliver(new Uint8Array([2]));
    assert.equal(link.unsentBatches, 0, 'nothing written before the end of the turn');
    await waitFor('all of it', () => got.controls.length === 2 && got.payloads.length === 2);
    assert.deepEqual(got.controls, [{ t: 'count', channel: 'c', count: 3 }, { t: 'sync', id: 1 }]);
    assert.deepEqual(got.payloads.map((p) => [...p]), [[1], [2]]);
    a.destroy();
  });

  test('a record longer than MAX_PEER_RECORD_BYTES, an unknown kind or an unreadable control close the link', async () => {
    for (const bad of [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 1]),
      (() => {
        const h = Buffer.alloc(5);
        h.writeUInt32BE(MAX_PEER_RECORD_BYTES + 1, 0);
        h[4] = 1;
        return h;
      })(),
      record(9, new Uint8Array([1])),
      record(2, new Uint8Array([1, 2, 3]))
    ]) {
      const [a, b] = await socketPair();
      const got = recorder();
      new PeerLink(1, b, got);
      a.write(bad);
      await waitFor('the link to close', () => got.isClosed);
      assert.equal(got.payloads.length, 0);
      a.destroy();
    }
    // At the limit exactly: the header is accepted (the body is awaited).
    const [a, b] = await socketPair();
    const got = recorder();
    new PeerLink(1, b, got);
    const h = Buffer.alloc(5);
    h.writeUInt32BE(MAX_PEER_RECORD_BYTES, 0);
    h[4] = 1;
    a.write(h);
    // The header was read (and judged) once the socket has read its 5 bytes.
    await waitFor('the header to be read', () => b.bytesRead >= 5);
    await tick();
    assert.equal(got.isClosed, false);
    a.destroy();
  });
});

describe('IpcBus over peer links', () => {
  async function linkedBuses(): Promise<[IpcBus, IpcBus, Socket, Socket]> {
    const [sa, sb] = await socketPair();
    const a = new IpcBus(new AgentLink(new AgentFake()));
    const b = new IpcBus(new AgentLink(new AgentFake()));
    a.addPeer(2, sa);
    b.addPeer(1, sb);
    assert.equal(await a.whenPeersReady([2], 2000), true);
    assert.equal(await b.whenPeersReady([1], 2000), true);
    return [a, b, sa, sb];
  }

  test('a message goes only to a worker with members, once, in order; none after it leaves', async () => {
    const [a, b, sa] = await linkedBuses();
    const got: BusMessage[] = [];
    b.onMessage((m) => got.push(m));
    assert.equal(a.publish(msg('c', -1)), true, 'no member anywhere: accepted, sent nowhere');
    b.setLocalCount('c', 2);
    await b.whenSubscribed('c');
    assert.equal(b.whenSubscribed('c'), null, 'confirmed by the peer and the agent');
    for (let i = 0; i < 100; i++) a.publish(msg('c', i));
    a.publish(msg('other', 'x'));
    await waitFor('100 messages', () => got.length >= 100);
    await tick();
    assert.deepEqual(got.map((m) => m.frame.type === 'joined' && JSON.parse(m.frame.data.user!)), Array.from({ length: 100 }, (_, i) => i));
    b.setLocalCount('c', 0);
    // The count reaches a with b's next write; a sync round trip proves it was read.
    b.setLocalCount('probe', 1);
    await b.whenSubscribed('probe');
    a.publish(msg('c', 'late'));
    // The link is FIFO: once a later message for a channel b is in has come, 'late' would have too.
    a.publish(msg('probe', 'after'));
    await waitFor('the message after it', () => got.some((m) => m.channel === 'probe'));
    assert.equal(got.length, 101, 'nothing for a channel the worker left');
    sa.destroy();
  });

  test('remoteCount is the peers\' counts as read from the links: exact once whenSubscribed resolved, plus the other nodes; a closed peer counts no more', async () => {
    const [a, b, sa] = await linkedBuses();
    b.setLocalCount('c', 1);
    await b.whenSubscribed('c');
    assert.equal(a.remoteCount('c'), 1, 'b\'s member is counted on a as soon as b may answer `subscribed`');
    b.setLocalCount('c', 2);
    const second = b.whenSubscribed('c');
    assert.ok(second instanceof Promise, 'a second member waits for the peer too');
    await second;
    assert.equal(a.remoteCount('c'), 2);
    a.setRemoteCount('c', 10);
    assert.equal(a.remoteCount('c'), 12, 'plus the members on other nodes (from the agent)');
    b.setLocalCount('*', 3);
    await waitFor('the session count', () => a.remoteCount('*') === 3);
    sa.destroy();
    await waitFor('the peer to be gone', () => a.peerCount === 0);
    assert.equal(a.remoteCount('c'), 10);
    assert.equal(a.remoteCount('*'), 0);
  });

  test('`subscribed` waits for every peer: a sync to a peer is answered only after it read the count', async () => {
    const [sa, sb] = await socketPair();
    const b = new IpcBus(new AgentLink(new AgentFake()));
    b.addPeer(1, sb);
    // The other end is a bare link that answers when told.
    const raw = recorder();
    const peer = new PeerLink(2, sa, raw);
    peer.control({ t: 'table-end' });
    assert.equal(await b.whenPeersReady([1], 2000), true);
    b.setLocalCount('c', 1);
    let done = false;
    void b.whenSubscribed('c')!.then(() => (done = true));
    await waitFor('the sync', () => raw.controls.some((c) => c.t === 'sync'));
    const i = raw.controls.findIndex((c) => c.t === 'sync');
    assert.deepEqual(raw.controls.slice(0, i), [{ t: 'table-end' }, { t: 'count', channel: 'c', count: 1 }], 'the count comes before the sync');
    // A round trip on the link (and the agent's answer, which comes at once) before the check.
    peer.control({ t: 'sync', id: 99 });
    await waitFor('the round trip', () => raw.controls.some((c) => c.t === 'synced' && c.id === 99));
    await tick();
    assert.equal(done, false, 'not before the peer answers');
    peer.control({ t: 'synced', id: (raw.controls[i] as { id: number }).id });
    await waitFor('subscribed', () => done);
    sa.destroy();
  });

  test('group commit: members that join while a sync is in flight, each in its own turn, share the next one; every count is read before its sync', async () => {
    const [sa, sb] = await socketPair();
    const b = new IpcBus(new AgentLink(new AgentFake()));
    b.addPeer(1, sb);
    const raw = recorder();
    const peer = new PeerLink(2, sa, raw);
    peer.control({ t: 'table-end' });
    assert.equal(await b.whenPeersReady([1], 2000), true);
    const syncs = (): Array<{ t: 'sync'; id: number; at: number }> =>
      raw.controls.flatMap((c, at) => (c.t === 'sync' ? [{ ...c, at }] : []));
    const done: number[] = [];
    const join = (n: number): void => {
      b.setLocalCount('c', n);
      void b.whenSubscribed('c')!.then(() => done.push(n));
    };
    join(1);
    await waitFor('the first sync', () => syncs().length === 1);
    // 20 members, each in a turn of its own, while the first sync is unanswered.
    for (let n = 2; n <= 21; n++) {
      await tick();
      join(n);
    }
    await waitFor('the count of 21', () => raw.controls.some((c) => c.t === 'count' && c.count === 21));
    assert.equal(syncs().length, 1, 'no sync per member while one is in flight');
    peer.control({ t: 'synced', id: syncs()[0]!.id });
    await waitFor('the first member', () => done.includes(1));
    await waitFor('the next round', () => syncs().length === 2);
    assert.deepEqual(done, [1], 'the others wait for the round that follows their counts');
    const second = syncs()[1]!;
    const lastCount = raw.controls.map((c) => c.t === 'count' && c.count === 21).lastIndexOf(true);
    assert.ok(lastCount < second.at, 'the second sync follows every count it vouches for');
    peer.control({ t: 'synced', id: second.id });
    await waitFor('all 21', () => done.length === 21);
    assert.equal(syncs().length, 2, 'two syncs for 21 members');
    assert.equal(b.whenSubscribed('c'), null, 'confirmed at 21');
    sa.destroy();
  });

  test('a new peer is sent the whole table first; a peer that closes stops being waited for', async () => {
    const a = new IpcBus(new AgentLink(new AgentFake()));
    a.setLocalCount('x', 3);
    a.setLocalCount('*', 5);
    const [sa, sb] = await socketPair();
    a.addPeer(2, sa);
    const raw = recorder();
    new PeerLink(1, sb, raw);
    await waitFor('the table', () => raw.controls.some((c) => c.t === 'table-end'));
    assert.deepEqual(new Set(raw.controls.slice(0, 2).map((c) => JSON.stringify(c))), new Set([JSON.stringify({ t: 'count', channel: 'x', count: 3 }), JSON.stringify({ t: 'count', channel: '*', count: 5 })]));
    // A sync in flight to a peer that goes away resolves.
    a.setLocalCount('y', 1);
    const wait = a.whenSubscribed('y')!;
    await waitFor('the sync', () => raw.controls.some((c) => c.t === 'sync'));
    sb.destroy();
    await wait;
    await waitFor('the peer to be gone', () => a.peerCount === 0);
  });

  test('whenPeersReady: waits for each table, not for a worker the agent said is gone, false after the timeout', async () => {
    const a = new IpcBus(new AgentLink(new AgentFake()));
    assert.equal(await a.whenPeersReady([7], 50), false, 'a link that never came');
    const waiting = a.whenPeersReady([7, 8], 2000);
    a.peerGone(7);
    const [sa, sb] = await socketPair();
    a.addPeer(8, sa);
    const peerGot = recorder();
    const peer = new PeerLink(1, sb, peerGot);
    let ready = false;
    void waiting.then(() => (ready = true));
    // A round trip on the link: what the peer sent before it was read.
    peer.control({ t: 'sync', id: 99 });
    await waitFor('the round trip', () => peerGot.controls.some((c) => c.t === 'synced' && c.id === 99));
    await tick();
    assert.equal(ready, false, 'not before the table ends');
    peer.control({ t: 'table-end' });
    assert.equal(await waiting, true);
    sb.destroy();
  });

  test('a peer that stopped reading gets nothing more once MAX_PEER_UNSENT_BATCHES writes wait; publishing goes on', async () => {
    const [sa, sb] = await socketPair();
    const a = new IpcBus(new AgentLink(new AgentFake()));
    a.addPeer(2, sa);
    const peer = new PeerLink(1, sb, recorder());
    peer.control({ t: 'count', channel: 'c', count: 1 });
    peer.control({ t: 'table-end' });
    assert.equal(await a.whenPeersReady([2], 2000), true);
    sb.pause();
    const big = msg('c', 'x'.repeat(4096));
    let sent = 0;
    // Each turn is one write; the kernel's buffers fill, then writes wait in the process.
    while (a.dropped === 0 && sent < MAX_PEER_UNSENT_BATCHES * 4) {
      assert.equal(a.publish(big), true);
      sent++;
      a.flushPeers();
    }
    assert.equal(a.dropped, 1, 'dropped once the backlog is full');
    assert.equal(a.unsentToPeers, MAX_PEER_UNSENT_BATCHES);
    assert.ok(sent > MAX_PEER_UNSENT_BATCHES);
    sb.resume();
    await waitFor('the backlog to drain', () => a.unsentToPeers === 0, 10000);
    sb.destroy();
    sa.destroy();
  });
});
