import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { connectPublisher } from '../../bench/client-protocols.js';
import { summarize, sustainedBroadcasts, type WindowReport } from '../../bench/scale-rate.js';
import { forkClient, next, send, type Client } from '../../bench/scale-fleet.js';
import { ServerProcess } from '../../bench/server-process.js';

const WS_SERVER = fileURLToPath(new URL('../../bench/ws-server.js', import.meta.url));

/** A window of `n` broadcasts 100 ms apart from t = 0, each reaching `sessions` recipients `spread(i)` ms after its send. */
function window(n: number, sessions: number, spread: (i: number) => number): { sentAt: number[]; reports: WindowReport[] } {
  const sentAt = Array.from({ length: n }, (_, i) => i * 100);
  // Two client processes, the sessions split between them; the second's last arrival is the later one.
  const half = Math.floor(sessions / 2);
  const reports: WindowReport[] = [
    { counts: sentAt.map(() => half), lastAt: sentAt.map((t, i) => t + spread(i) / 2), droppedByServer: 0 },
    { counts: sentAt.map(() => sessions - half), lastAt: sentAt.map((t, i) => t + spread(i)), droppedByServer: 0 }
  ];
  return { sentAt, reports };
}

test('a window whose spread stays flat kept up; one whose spread grows by the interval each time fell behind', () => {
  const flat = window(30, 10, (i) => 40 + (i % 3) * 5);
  const kept = summarize({ rate: 10, seconds: 3, sessions: 10, sentAt: flat.sentAt, started: 0, lastSent: 2900, reports: flat.reports, errors: 0 });
  assert.equal(kept.broadcasts, 30);
  assert.equal(kept.expected, 300);
  assert.equal(kept.delivered, 300);
  assert.equal(kept.spreadMaxMs, 50);
  assert.equal(kept.firstThirdP50Ms, 45);
  assert.equal(kept.drainMs, 50);
  assert.equal(kept.keptUp, true);

  // A server that delivers 80 % of what is offered: each broadcast waits 25 ms longer than the one before.
  const backlog = window(30, 10, (i) => 40 + i * 25);
  const behind = summarize({ rate: 10, seconds: 3, sessions: 10, sentAt: backlog.sentAt, started: 0, lastSent: 2900, reports: backlog.reports, errors: 0 });
  assert.equal(behind.delivered, 300);
  assert.equal(behind.lastThirdP50Ms, 40 + 25 * 25);
  assert.equal(behind.keptUp, false);
});

test('a missing delivery, a failed send or a dropped session is not keeping up, whatever the spread', () => {
  const flat = window(30, 10, () => 40);
  const base = { rate: 10, seconds: 3, sessions: 10, sentAt: flat.sentAt, started: 0, lastSent: 2900, errors: 0 };
  const short = flat.reports.map((r) => ({ ...r, counts: [...r.counts] }));
  short[1]!.counts[17]!--;
  const missing = summarize({ ...base, reports: short });
  assert.equal(missing.delivered, 299);
  assert.equal(missing.keptUp, false);
  assert.equal(summarize({ ...base, reports: flat.reports, errors: 1 }).keptUp, false);
  const dropped = summarize({ ...base, reports: [flat.reports[0]!, { ...flat.reports[1]!, droppedByServer: 2 }] });
  assert.equal(dropped.droppedByServer, 2);
});

test('sustained broadcasts to the bare ws loop: every delivery of every sequence number is counted across client processes, and a channel nobody on one process joined shows as missing', async () => {
  const server = await ServerProcess.start({ command: process.execPath, args: [WS_SERVER, '--port', '0', '--host', '0.0.0.0'] });
  const clients: Client[] = [];
  try {
    const port = server.address.port;
    const connect = async (host: string, channel: string, count: number): Promise<Client> => {
      const client = forkClient({ host, port }, count);
      clients.push(client);
      const connected = next(client, 'connected', 60_000);
      send(client, { cmd: 'connect', target: client.target, channel, count, concurrency: 16 });
      assert.deepEqual(await connected.then((m) => [m.ok, m.failed]), [count, 0]);
      return client;
    };
    const a = await connect('127.0.0.1', 'bench', 100);
    const b = await connect('127.0.0.2', 'bench', 150);
    const publisher = await connectPublisher({ target: { host: '127.0.0.1', port }, protocol: 'json', channel: 'bench', onFailure: (m) => assert.fail(m) });
    try {
      const publish = (payload: Parameters<typeof publisher.publish>[0]): Promise<string | undefined> =>
        new Promise((resolve) => publisher.publish(payload, (count) => resolve(count === 250 ? undefined : `count ${count}`)));
      const all = await sustainedBroadcasts({ clients: [a, b], sessions: 250, serverPid: server.pid, rate: 20, seconds: 1, firstSeq: 100, publish });
      assert.equal(all.broadcasts, 20);
      assert.equal(all.expected, 5000);
      assert.equal(all.delivered, 5000);
      assert.equal(all.droppedByServer, 0);
      assert.deepEqual(all.notes, []);

      // The third process's sessions are on another channel: its window never fills, so it is asked for its counts.
      const c = await connect('127.0.0.3', 'elsewhere', 50);
      const partial = await sustainedBroadcasts({ clients: [a, b, c], sessions: 300, serverPid: server.pid, rate: 20, seconds: 0.5, firstSeq: 200, publish, drainTimeoutMs: 1000 });
      assert.equal(partial.broadcasts, 10);
      assert.equal(partial.expected, 3000);
      assert.equal(partial.delivered, 2500);
      assert.equal(partial.keptUp, false);
      assert.match(partial.notes.join(), /not every delivery arrived within 1000 ms/);
    } finally {
      publisher.close();
    }
  } finally {
    for (const c of clients) c.child.kill('SIGKILL');
    await server.stop();
  }
});
