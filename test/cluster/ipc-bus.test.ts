import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { IpcBus } from '../../src/bus/ipc-bus.js';
import { AgentLink, MAX_UNSENT_BATCHES } from '../../src/cluster/agent-link.js';
import type { BusMessage } from '../../src/bus/bus.js';
import type { WorkerItem, WorkerMessage } from '../../src/cluster/ipc-messages.js';
import { restartDelayMs, statsIntervalMs, MAX_RESTART_DELAY_MS } from '../../src/cluster/agent.js';
import { formatStatus } from '../../src/cli/status.js';

/** A process-like IPC endpoint that records what is sent; `hold` keeps send callbacks pending. */
class FakeProcess extends EventEmitter {
  connected = true;
  hold = false;
  readonly sent: WorkerMessage[] = [];
  private held: Array<() => void> = [];
  send = (message: never, _h?: undefined, _o?: undefined, cb?: (err: Error | null) => void): boolean => {
    this.sent.push(message as WorkerMessage);
    if (this.hold) this.held.push(() => cb?.(null));
    else cb?.(null);
    return true;
  };
  release(): void {
    for (const f of this.held.splice(0)) f();
  }
  items(): WorkerItem[] {
    return this.sent.flatMap((m) => m.items);
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('IpcBus and AgentLink (a worker end of the IPC channel)', () => {
  test('with --bus: one batch per turn to the agent; counts coalesced and first; publish carries the serialized message', async () => {
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
    assert.deepEqual(items.map((i) => i.t), ['count', 'publish', 'sub']);
    assert.deepEqual(items[0], { t: 'count', channel: 'news', count: 2 });
    // The receiving worker gets the same message back from the bytes.
    const other = new IpcBus(new AgentLink(new FakeProcess()));
    const got: BusMessage[] = [];
    other.onMessage((m) => got.push(m));
    other.receive((items[1] as Extract<WorkerItem, { t: 'publish' }>).payload);
    const data = (got[0]!.frame as { data: { b: Uint8Array; at: Date; n: number } }).data;
    assert.deepEqual([...data.b], [1, 2]);
    assert.ok(data.at instanceof Date && data.at.getTime() === 0);
    assert.ok(Number.isNaN(data.n));
    assert.equal(got[0]!.exclude, 's1');
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

  test('a batch of published messages alone waits until 1 ms after the previous batch; registry items never wait', async () => {
    const msg: BusMessage = { channel: 'c', frame: { type: 'event', channel: 'c', data: 1, from: null, id: 'x' }, exclude: null };
    let proc: FakeProcess, link: AgentLink, bus: IpcBus;
    // Within the millisecond after that batch (synchronous code: microseconds later,
    // unless this machine is busy enough to stall it: then the try is made again).
    for (let attempt = 1; ; attempt++) {
      proc = new FakeProcess();
      link = new AgentLink(proc);
      bus = new IpcBus(link, true);
      bus.publish(msg);
      link.flush();
      assert.equal(proc.sent.length, 1);
      const t0 = performance.now();
      bus.publish(msg);
      bus.publish(msg);
      if (performance.now() - t0 < 0.5 || attempt === 10) break;
    }
    await new Promise<void>((r) => process.nextTick(r));
    assert.equal(proc.sent.length, 1, 'the next ones are gathered');
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(proc.sent.length, 2);
    assert.equal(proc.sent[1]!.items.length, 2);
    bus.publish(msg);
    link.send({ t: 'sub', session: 's', channel: 'c' });
    await new Promise<void>((r) => process.nextTick(r));
    assert.equal(proc.sent.length, 3, 'a registry item takes the waiting messages along at once');
    assert.deepEqual(proc.sent[2]!.items.map((i) => i.t), ['publish', 'sub']);
  });

  test('without --bus, published messages do not go to the agent (the workers get them over their links)', async () => {
    const proc = new FakeProcess();
    const bus = new IpcBus(new AgentLink(proc));
    bus.setLocalCount('c', 1);
    assert.equal(bus.publish({ channel: 'c', frame: { type: 'event', channel: 'c', data: 1, from: null, id: 'x' }, exclude: null }), true);
    await tick();
    assert.deepEqual(proc.items().map((i) => i.t), ['count']);
  });

  test('remote counts come from the agent; zero forgets the channel', () => {
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
    for (let i = 0; i < MAX_UNSENT_BATCHES; i++) {
      assert.equal(bus.publish(msg), true);
      link.flush();
    }
    assert.equal(link.unsentBatches, MAX_UNSENT_BATCHES);
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

  test('requests get the agent answer, or 503 when it does not come', async () => {
    const proc = new FakeProcess();
    const link = new AgentLink(proc);
    const answer = link.request({ kind: 'workers' });
    await tick();
    const req = proc.items().find((i) => i.t === 'request') as Extract<WorkerItem, { t: 'request' }>;
    proc.emit('message', { t: 'batch', items: [{ t: 'response', id: req.id, answer: { status: 200, body: { ok: 1 } } }] });
    assert.deepEqual(await answer, { status: 200, body: { ok: 1 } });
    const pending = link.request({ kind: 'reload' });
    link.close();
    assert.equal((await pending).status, 503);
  });
});

describe('agent policies', () => {
  test('restart backoff: at once, then 1 s doubling, capped at 30 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(restartDelayMs), [0, 1000, 2000, 4000, 8000, 16000, 30000]);
    assert.equal(restartDelayMs(1000), MAX_RESTART_DELAY_MS);
  });

  test('workers report every second, or 4 times per heartbeat timeout when it is short', () => {
    assert.equal(statsIntervalMs(10000), 1000);
    assert.equal(statsIntervalMs(1000), 250);
  });

  test('zenconn status prints one row per worker and the totals', () => {
    const w = { id: 'w', slot: 0, pid: 42, state: 'ready' as const, startedAt: '', uptimeMs: 65000, port: null, sessions: 5, channels: 1, messagesInPerSec: 3, messagesOutPerSec: 30, heapUsedBytes: 1048576, rssBytes: 10485760, loopLagMs: 1.25, peers: 1 };
    const out = formatStatus({
      agent: { id: 'a', pid: 1, state: 'ready', uptimeMs: 70000, workers: 2 },
      workers: [w, { ...w, slot: 1, pid: 43 }],
      totals: { workers: 2, sessions: 10, messagesInPerSec: 6, messagesOutPerSec: 60, rssBytes: 20971520 }
    });
    assert.match(out, /^agent a {2}pid 1 {2}ready {2}up 1m10s {2}workers 2\/2$/m);
    assert.match(out, /^0 +42 +ready +1m05s +5 +3 +30 +10\.0 MiB +1\.0 MiB +1\.3 ms$/m);
    assert.match(out, /^total +10 +6 +60 +20\.0 MiB$/m);
  });
});
