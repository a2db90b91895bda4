import { ChannelSet } from '../../src/channels/channel-set.js';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { socketPair } from '../helpers/socket-pair.js';
import { serialize } from 'node:v8';
import pino from 'pino';
import { IpcBus } from '../../src/cluster/ipc-bus.js';
import { AgentLink } from '../../src/cluster/agent-link.js';
import { PeerLink, type PeerLinkHandler } from '../../src/cluster/peer-link.js';
import { Hub } from '../../src/channels/hub.js';
import type { ChannelMember } from '../../src/channels/member.js';
import type { Transport } from '../../src/transport/transport.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import type { BusMessage } from '../../src/bus/bus.js';
import type { AuditSink } from '../../src/audit/audit-sink.js';
import { newId } from '../../src/protocol/ids.js';
import { FakeProcess } from './fake-process.js';
import { waitFor } from '../helpers/wait.js';

/** `[[[…]]]` nested `depth` deep. At 2,500, v8 (de)serializes it but msgpackr's pack exhausts the stack (the reported crash). */
function nested(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}


/** A hub over a bus with one open member of `room` on each codec: what a worker's hub is. */
function hubWithMembers(bus: IpcBus): { hub: Hub; written: number } {
  const state = { written: 0 };
  const transport = { prepare: (bytes: Buffer) => bytes } as unknown as Transport;
  const audit = { record: () => undefined, afterDurable: (f: () => void) => f() } as unknown as AuditSink;
  const hub = new Hub({ transport, bus, audit, channelSecret: null, maxChannelsPerSession: 10 });
  // The binary member first: its encoding throws before anything is written.
  for (const [i, codec] of [binaryCodec, jsonCodec].entries()) {
    const member = {
      id: `s${i}`,
      state: 'open',
      codec,
      channels: ChannelSet.of(['room']),
      write: () => state.written++
    } as unknown as ChannelMember;
    hub.channels.set('room', (hub.channels.get('room') ?? new Set()).add(member));
  }
  return {
    hub,
    get written() {
      return state.written;
    }
  };
}

describe('a record another process sends that cannot be handled is dropped and counted, never thrown', () => {
  test('IpcBus.receive: bytes that do not deserialize, and a message the hub cannot encode', () => {
    const bus = new IpcBus(new AgentLink(new FakeProcess()), false, pino({ level: 'silent' }));
    const h = hubWithMembers(bus);
    assert.doesNotThrow(() => bus.receive(Buffer.from([0xff, 0x0f, 0x01])));
    assert.equal(bus.undeliverable, 1);
    // What the 2,500-deep POST used to put on a peer link: msgpackr's pack throws a RangeError.
    const deep: BusMessage = { channel: 'room', frame: { type: 'event', channel: 'room', data: nested(2500), from: null, id: newId() }, exclude: null };
    assert.doesNotThrow(() => bus.receive(serialize(deep)));
    assert.equal(bus.undeliverable, 2);
    // The next good message still goes out.
    bus.receive(serialize({ channel: 'room', frame: { type: 'event', channel: 'room', data: 1, from: null, id: newId() }, exclude: null } satisfies BusMessage));
    assert.equal(h.written, 2);
    assert.equal(bus.undeliverable, 2);
    h.hub.close();
  });

  test('over a real peer link: the link stays open, later records are delivered', async () => {
    const [sa, sb] = await socketPair();
    const bus = new IpcBus(new AgentLink(new FakeProcess()), false, pino({ level: 'silent' }));
    const h = hubWithMembers(bus);
    bus.addPeer(1, sb);
    const sender: PeerLinkHandler = { deliver: () => undefined, control: () => undefined, closed: () => undefined };
    const peer = new PeerLink(2, sa, sender);
    peer.control({ t: 'count', channel: 'room', count: 1 });
    peer.deliver(Buffer.from([0xff, 0x00]));
    peer.deliver(serialize({ channel: 'room', frame: { type: 'event', channel: 'room', data: nested(2500), from: null, id: newId() }, exclude: null } satisfies BusMessage));
    peer.deliver(serialize({ channel: 'room', frame: { type: 'event', channel: 'room', data: 'after', from: null, id: newId() }, exclude: null } satisfies BusMessage));
    await waitFor('the good record after the bad ones', () => h.written === 2);
    assert.equal(bus.undeliverable, 2);
    assert.equal(bus.peerCount, 1, 'the link is still open');
    h.hub.close();
    sa.destroy();
    await bus.close();
  });

  test('from the agent (`deliver` items on the IPC channel): dropped and counted, the worker goes on', () => {
    const proc = new FakeProcess();
    const link = new AgentLink(proc);
    const bus = new IpcBus(link, false, pino({ level: 'silent' }));
    link.onItem((item) => {
      if (item.t === 'deliver') bus.receive(item.payload);
    });
    const h = hubWithMembers(bus);
    const bad = serialize({ channel: 'room', frame: { type: 'event', channel: 'room', data: nested(2500), from: null, id: newId() }, exclude: null } satisfies BusMessage);
    assert.doesNotThrow(() => (proc as unknown as EventEmitter).emit('message', { t: 'batch', items: [{ t: 'deliver', payload: bad }, { t: 'deliver', payload: new Uint8Array([1]) }] }));
    assert.equal(bus.undeliverable, 2);
    h.hub.close();
  });
});
