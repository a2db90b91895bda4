import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { IpcBus } from '../../src/cluster/ipc-bus.js';
import { AgentLink } from '../../src/cluster/agent-link.js';
import type { BusMessage } from '../../src/bus/bus.js';
import type { WorkerItem } from '../../src/cluster/ipc-messages.js';
import { waitFor } from '../helpers/wait.js';
import { FakeProcess, tick } from './fake-process.js';

describe('AgentLink (a worker end of the IPC channel)', () => {
  test('a batch of published messages alone waits until 1 ms after the previous batch; registry items wait for the registry window', async () => {
    const msg: BusMessage = { channel: 'c', frame: { type: 'event', channel: 'c', data: 1, from: null, id: 'x' }, exclude: null };
    let proc: FakeProcess, link: AgentLink, bus: IpcBus;
    // Within the millisecond after that batch: t0 is read before the flush reads its clock, so
    // under 1 ms since t0 is under 1 ms since the batch. A machine busy enough to stall this
    // synchronous code past it makes the try again.
    for (let attempt = 1; ; attempt++) {
      proc = new FakeProcess();
      link = new AgentLink(proc);
      bus = new IpcBus(link, true);
      bus.publish(msg);
      const t0 = performance.now();
      link.flush();
      assert.equal(proc.sent.length, 1);
      bus.publish(msg);
      bus.publish(msg);
      await new Promise<void>((r) => process.nextTick(r));
      if (performance.now() - t0 < 0.9 || attempt === 10) break;
    }
    assert.equal(proc.sent.length, 1, 'the next ones are gathered');
    await waitFor('the gathered batch', () => proc.sent.length === 2);
    assert.equal(proc.sent.length, 2);
    assert.equal(proc.sent[1]!.items.length, 2);
    bus.publish(msg);
    link.send({ t: 'sub', session: 's', channel: 'c' });
    await tick();
    assert.equal(proc.sent.length, 3, 'a registry item takes the waiting messages along with the iteration\'s write');
    assert.deepEqual(proc.sent[2]!.items.map((i) => i.t), ['sequence', 'sub']);
    // Registry items wait for others (REGISTRY_COALESCE_MS); a prompt item (a sync) takes them along at the iteration's end.
    link.send({ t: 'sub', session: 's2', channel: 'c' });
    link.send({ t: 'unsub', session: 's2', channel: 'c' });
    await tick();
    assert.equal(proc.sent.length, 3, 'registry items wait');
    await waitFor('the registry batch', () => proc.sent.length === 4);
    assert.deepEqual(proc.sent[3]!.items.map((i) => i.t), ['sub', 'unsub']);
    link.send({ t: 'sub', session: 's3', channel: 'c' });
    void link.sync('c');
    await tick();
    assert.equal(proc.sent.length, 5);
    assert.deepEqual(proc.sent[4]!.items.map((i) => i.t), ['sub', 'sync']);
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
