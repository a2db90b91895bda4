import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { waitFor } from '../helpers/wait.js';
import type { EventFrame, ServerFrame } from '../../src/protocol/frames.js';
import type { ProtocolName } from '../../src/protocol/codec.js';

/** Connects a client that keeps the positions of its frames. */
export function connect(port: number, token?: string, protocol: ProtocolName = 'json'): Promise<TestClient> {
  return TestClient.connect(port, { token, protocol, positions: true });
}

/** The events of `channel` a client has received and not yet taken. */
export function eventsOf(c: TestClient, channel: string): EventFrame[] {
  return c.frames.filter((f): f is EventFrame => f.type === 'event' && f.channel === channel);
}

/** Waits until `c` holds `n` events of `channel`, then takes them (in arrival order). */
export async function takeEvents(c: TestClient, channel: string, n: number, timeoutMs = 10000): Promise<EventFrame[]> {
  await waitFor(`${n} events on ${channel}`, () => eventsOf(c, channel).length >= n, timeoutMs);
  const got = eventsOf(c, channel).slice(0, n);
  for (const f of got) c.frames.splice(c.frames.indexOf(f), 1);
  return got;
}

/** Subscribes and returns the `subscribed` answer (with its position). */
export async function subscribeAt(c: TestClient, channel: string, since?: { offset: number; epoch: string }, token?: string): Promise<Extract<ServerFrame, { type: 'subscribed' }>> {
  c.send(since === undefined ? { type: 'subscribe', channel, ...(token ? { token } : {}) } : { type: 'subscribe', channel, since, ...(token ? { token } : {}) });
  return (await c.next((f) => (f.type === 'subscribed' || f.type === 'unauthorized' || f.type === 'error') && f.channel === channel, 10000)) as Extract<ServerFrame, { type: 'subscribed' }>;
}

/** Asserts offsets `from`, `from + 1`, … in order, all in `epoch`, and the data `n` they carry. */
export function assertSequence(events: EventFrame[], from: number, epoch: string, what = 'events'): void {
  events.forEach((e, i) => {
    if (e.offset !== from + i) assert.fail(`${what}: event ${i} has offset ${e.offset}, expected ${from + i}; offsets: ${events.map((x) => x.offset).join(',')}`);
    assert.equal(e.epoch, epoch, `${what}: event ${i} epoch`);
  });
}

/**
 * Publishes `n` events `{n: i}` on `channel` from `pub` (which holds `publish`), not
 * waiting for anything in between; resolves once every `received` came back.
 */
export async function publishMany(pub: TestClient, channel: string, n: number, start = 0): Promise<void> {
  for (let i = 0; i < n; i++) pub.send({ type: 'broadcast', channel, data: { n: start + i } });
  for (let i = 0; i < n; i++) await pub.nextOf('received', 10000);
}
