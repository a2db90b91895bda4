import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { IpcBus } from '../../src/cluster/ipc-bus.js';
import { AgentLink, MAX_UNSENT_TO_AGENT_BATCHES } from '../../src/cluster/agent-link.js';
import type { BusMessage } from '../../src/bus/bus.js';
import type { WorkerItem } from '../../src/cluster/ipc-messages.js';
import { FakeProcess, tick } from './fake-process.js';
import { waitFor } from '../helpers/wait.js';

describe('IpcBus (the bus of a worker, over its AgentLink)', () => {
  test('with --bus: one batch per turn to the agent; counts coalesced and first; an event goes to the agent (its sequencer) serialized', async () => {
    const proc = new FakeProcess();
    const link = new AgentLink(proc);
    const bus = new IpcBus(link, true);
    bus.setLocalCount('news', 1);
    const msg: BusMessage = { channel: 'news', frame: { type: 'event', channel: 'news', data: { b: new Uint8Array([1, 2]), at: new Date(0), n: NaN }, from: null, id: 'x' }, exclude: 's1' };
    assert.equal(bus.publish(msg), true);
    bus.setLocalCount('news', 2);
    link.send({ t: 'sub', session: 's1', channel: 'news' });
    await tick();
    assert.equal(proc.sent.length, 1);
    const items = proc.items();
    assert.deepEqual(items.map((i) => i.t), ['count', 'sequence', 'sub']);
    assert.deepEqual(items[0], { t: 'count', channel: 'news', count: 2 });
    // The receiving worker gets the same message back from the bytes.
    const other = new IpcBus(new AgentLink(new FakeProcess()));
    const got: BusMessage[] = [];
    other.onMessage((m) => got.push(m));
    other.receive((items[1] as Extract<WorkerItem, { t: 'sequence' }>).payload, 7, 'e1');
    const data = (got[0]!.frame as { data: { b: Uint8Array; at: Date; n: number } }).data;
    assert.deepEqual([...data.b], [1, 2]);
    assert.ok(data.at instanceof Date && data.at.getTime() === 0);
    assert.ok(Number.isNaN(data.n));
    assert.equal(got[0]!.exclude, 's1');
    assert.deepEqual([(got[0]!.frame as { offset: number }).offset, (got[0]!.frame as { epoch: string }).epoch], [7, 'e1'], 'the position the agent gave');
  });

  test('whenSubscribed: one sync per channel newly in use, after its count; confirmed → in effect; unconfirmed → asked again', async () => {
    const proc = new FakeProcess();
    const link = new AgentLink(proc);
    const bus = new IpcBus(link);
    bus.setLocalCount('a', 1);
    const wait = bus.whenSubscribed('a');
    assert.ok(wait instanceof Promise);
    assert.equal(bus.whenSubscribed('a'), wait, 'one sync in flight per channel');
    await tick();
    const items = proc.items();
    assert.deepEqual(items.map((i) => i.t), ['count', 'sync']);
    const sync = items[1] as Extract<WorkerItem, { t: 'sync' }>;
    proc.emit('message', { t: 'batch', items: [{ t: 'synced', id: sync.id }] });
    await wait;
    assert.equal(bus.whenSubscribed('a'), null, 'confirmed: in effect');
    // The agent goes away before confirming 'b': not marked in effect.
    bus.setLocalCount('b', 1);
    const waitB = bus.whenSubscribed('b')!;
    link.close();
    await waitB;
    assert.ok(bus.whenSubscribed('b') !== null, 'unconfirmed: the next subscriber asks again');
    // Back to no members and in use again: asked again.
    bus.setLocalCount('a', 0);
    bus.setLocalCount('a', 1);
    assert.ok(bus.whenSubscribed('a') instanceof Promise);
  });

  test('without --bus, member notices and * do not go to the agent (the workers get them over their links); channel events do (it sequences them)', async () => {
    const proc = new FakeProcess();
    const bus = new IpcBus(new AgentLink(proc));
    bus.setLocalCount('c', 1);
    assert.equal(bus.publish({ channel: 'c', frame: { type: 'joined', channel: 'c', data: { session: 's', user: null } }, exclude: null }), true);
    assert.equal(bus.publish({ channel: '*', frame: { type: 'event', channel: '*', data: 1, from: null, id: 'x' }, exclude: null }), true);
    await waitFor('the count (a registry item: it waits for others a moment)', () => proc.items().length === 1);
    assert.deepEqual(proc.items().map((i) => i.t), ['count']);
    assert.equal(bus.publish({ channel: 'c', frame: { type: 'event', channel: 'c', data: 1, from: null, id: 'x' }, exclude: null }), true);
    // Channel messages alone are gathered for a moment (agent-link.ts).
    await waitFor('the sequence item', () => proc.items().length === 2);
    assert.deepEqual(proc.items().map((i) => i.t), ['count', 'sequence']);
  });

  test('whenSubscribed: a count that grows is confirmed again (with --bus, by the agent: the other nodes count every member); growth within one turn shares one sync', async () => {
    const proc = new FakeProcess();
    const bus = new IpcBus(new AgentLink(proc), true);
    const confirm = async (): Promise<void> => {
      await tick();
      const syncs = proc.items().filter((i) => i.t === 'sync') as Array<Extract<WorkerItem, { t: 'sync' }>>;
      proc.sent.length = 0;
      proc.emit('message', { t: 'batch', items: syncs.map((x) => ({ t: 'synced', id: x.id })) });
    };
    bus.setLocalCount('a', 1);
    const first = bus.whenSubscribed('a')!;
    await confirm();
    await first;
    assert.equal(bus.whenSubscribed('a'), null);
    bus.setLocalCount('a', 2);
    const second = bus.whenSubscribed('a');
    assert.ok(second instanceof Promise, 'a second member is confirmed too');
    bus.setLocalCount('a', 3);
    assert.equal(bus.whenSubscribed('a'), second, 'asked in the same turn: its sync follows this count too');
    await tick();
    const items = proc.items();
    assert.deepEqual(items.map((i) => i.t), ['count', 'sync']);
    assert.deepEqual(items[0], { t: 'count', channel: 'a', count: 3 });
    bus.setLocalCount('a', 4);
    const third = bus.whenSubscribed('a');
    assert.ok(third instanceof Promise && third !== second, 'a later turn needs its own sync');
    await tick();
    assert.equal(proc.items().filter((i) => i.t === 'sync').length, 1, 'group commit: no second sync while the first is in flight');
    // What is written from here on: the count 5 waits up to REGISTRY_COALESCE_MS for company;
    // a sync takes it along, or (on a machine slow enough) it goes alone first. Either way it
    // is written before the next round.
    const mark = proc.items().length;
    bus.setLocalCount('a', 5);
    const fourth = bus.whenSubscribed('a');
    assert.ok(fourth instanceof Promise && fourth !== third);
    await tick();
    const log = proc.items().slice(mark);
    const firstRound = proc.items().filter((i) => i.t === 'sync') as Array<Extract<WorkerItem, { t: 'sync' }>>;
    proc.sent.length = 0;
    proc.emit('message', { t: 'batch', items: firstRound.map((x) => ({ t: 'synced', id: x.id })) });
    await second;
    // The next round goes once the first is answered and SYNC_ROUND_INTERVAL_MS after it began.
    await waitFor('the next round', () => proc.items().some((i) => i.t === 'sync'));
    log.push(...proc.items());
    const ofA = log.filter((i) => (i.t === 'count' || i.t === 'sync') && i.channel === 'a');
    const round = ofA.findIndex((i) => i.t === 'sync');
    assert.deepEqual(ofA.slice(0, round), [{ t: 'count', channel: 'a', count: 5 }], 'after the latest count');
    assert.equal(ofA.filter((i) => i.t === 'sync').length, 1, 'one sync for both later turns');
    await confirm();
    await Promise.all([third, fourth]);
    assert.equal(bus.whenSubscribed('a'), null);
    bus.setLocalCount('a', 2);
    assert.equal(bus.whenSubscribed('a'), null, 'fewer members: nothing to confirm');
    bus.setLocalCount('a', 3);
    const upAgain = bus.whenSubscribed('a');
    assert.ok(upAgain instanceof Promise, 'up again from 2: confirmed again');
    // A drop while that round is in flight, then a rise back to its count in a later turn: the
    // round was sent before the drop, so the rise gets a round of its own.
    await tick();
    bus.setLocalCount('a', 2);
    await tick();
    bus.setLocalCount('a', 3);
    const afterDrop = bus.whenSubscribed('a');
    assert.ok(afterDrop instanceof Promise && afterDrop !== upAgain, 'a rise after a drop is not vouched for by the older round');
    // Without --bus and without peers, nobody else counts this worker's members.
    const aloneProc = new FakeProcess();
    const alone = new IpcBus(new AgentLink(aloneProc));
    alone.setLocalCount('b', 1);
    const w = alone.whenSubscribed('b');
    assert.ok(w instanceof Promise, 'a channel new to the worker: the agent routes by it');
    await tick();
    const sync = aloneProc.items().find((i) => i.t === 'sync') as Extract<WorkerItem, { t: 'sync' }>;
    aloneProc.emit('message', { t: 'batch', items: [{ t: 'synced', id: sync.id }] });
    await w;
    alone.setLocalCount('b', 2);
    assert.equal(alone.whenSubscribed('b'), null, 'a second member: nobody to tell');
  });

  test('members on other nodes come from the agent (`remote`); zero forgets the channel', () => {
    const bus = new IpcBus(new AgentLink(new FakeProcess()));
    bus.setRemoteCount('x', 4);
    assert.equal(bus.remoteCount('x'), 4);
    bus.setRemoteCount('x', 0);
    assert.equal(bus.remoteCount('x'), 0);
  });

  test('publish is refused when the agent is gone or (with --bus) has stopped reading (bounded backlog)', async () => {
    const proc = new FakeProcess();
    proc.hold = true;
    const link = new AgentLink(proc);
    const bus = new IpcBus(link, true);
    const msg: BusMessage = { channel: 'c', frame: { type: 'event', channel: 'c', data: 1, from: null, id: 'x' }, exclude: null };
    for (let i = 0; i < MAX_UNSENT_TO_AGENT_BATCHES; i++) {
      assert.equal(bus.publish(msg), true);
      link.flush();
    }
    assert.equal(link.unsentBatches, MAX_UNSENT_TO_AGENT_BATCHES);
    assert.equal(bus.publish(msg), false);
    assert.equal(link.droppedPublishes, 1);
    link.send({ t: 'close', session: 's', code: 1000 });
    link.flush();
    assert.equal(proc.items().at(-1)!.t, 'close', 'registry events are never dropped');
    proc.release();
    assert.equal(link.unsentBatches, 0);
    assert.equal(bus.publish(msg), true);
    proc.connected = false;
    assert.equal(bus.publish(msg), false);
    assert.equal(bus.ready, false);
  });

});
