import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from '../../src/cluster/registry.js';
import { answerAdminQuery } from '../../src/cluster/admin-answers.js';
import { workersView } from '../../src/cluster/agent-answers.js';
import type { SessionInfo, WorkerStats, WorkerTotals } from '../../src/cluster/ipc-messages.js';

const info = (id: string, user: string | null, remoteAddr = '127.0.0.1'): SessionInfo => ({ id, remoteAddr, user, protocol: 'json', connectedAt: 0 });
const stats = (totals: WorkerTotals): WorkerStats => ({
  sessions: 0,
  channels: 0,
  messagesInPerSec: 0,
  messagesOutPerSec: 0,
  heapUsedBytes: 0,
  rssBytes: 0,
  loopLagMs: 0,
  peers: 0,
  undeliverable: 0,
  totals
});

describe('Registry: the admin questions', () => {
  test('finds sessions by id, user, address or channel, ignoring case, up to a limit', () => {
    const r = new Registry();
    r.addWorker(1, 0, 100, 0);
    r.sessionOpened(1, info('s-one', 'Alice', '10.0.0.7'));
    r.sessionOpened(1, info('s-two', null, '192.168.1.2'));
    r.subscribed(1, 's-two', 'chat.Lobby');
    const ids = (q: string, limit = 10): string[] => r.findSessions(q, limit).sessions.map((s) => s.id);
    assert.deepEqual(ids('alice'), ['s-one']);
    assert.deepEqual(ids('10.0.0'), ['s-one']);
    assert.deepEqual(ids('lobby'), ['s-two']);
    assert.deepEqual(ids('S-TWO'), ['s-two']);
    assert.deepEqual(ids(''), ['s-one', 's-two']);
    assert.deepEqual(ids('nobody'), []);
    assert.deepEqual(r.findSessions('', 1), { sessions: [r.findSessions('', 1).sessions[0]], truncated: true });
    assert.equal(r.findSessions('', 2).truncated, false);
    assert.equal(r.workerOf('s-two'), 1);
    assert.equal(r.workerOf('nope'), null);
  });

  test('lists the channels by members, largest first, and how many there are', () => {
    const r = new Registry();
    r.addWorker(1, 0, 100, 0);
    for (const id of ['a', 'b', 'c']) r.sessionOpened(1, info(id, null));
    r.subscribed(1, 'a', 'x');
    r.subscribed(1, 'a', 'y');
    r.subscribed(1, 'b', 'y');
    r.subscribed(1, 'c', 'z');
    assert.deepEqual(r.channelCounts(2), { total: 3, top: [{ channel: 'y', members: 2 }, { channel: 'x', members: 1 }] });
    r.sessionClosed(1, 'b');
    assert.deepEqual(r.channelCounts(10).top, [{ channel: 'x', members: 1 }, { channel: 'y', members: 1 }, { channel: 'z', members: 1 }]);
  });

  test("counters never go down: an exited worker's are kept, its sessions count as ended; restarts are counted per slot", () => {
    const r = new Registry();
    r.addWorker(1, 0, 100, 0);
    r.addWorker(2, 1, 101, 0);
    r.sessionOpened(1, info('a', null));
    r.sessionOpened(1, info('b', null));
    r.sessionOpened(2, info('c', null));
    r.sessionClosed(1, 'b');
    r.setStats(1, stats({ messagesIn: 5, messagesOut: 50 }));
    r.setStats(2, stats({ messagesIn: 1, messagesOut: 10 }));
    assert.deepEqual(r.counters(), { messagesIn: 6, messagesOut: 60, sessionsOpened: 3, sessionsClosed: 1 });
    r.removeWorker(1);
    r.addWorker(3, 0, 102, 0);
    assert.deepEqual(r.counters(), { messagesIn: 6, messagesOut: 60, sessionsOpened: 3, sessionsClosed: 2 });
    r.setStats(3, stats({ messagesIn: 1, messagesOut: 1 }));
    assert.deepEqual(r.counters(), { messagesIn: 7, messagesOut: 61, sessionsOpened: 3, sessionsClosed: 2 });
    assert.equal(r.restartsOf(0), 1);
    assert.equal(r.restartsOf(1), 0);
  });

  test('close: 404 for an unknown session, else the holding worker is told', () => {
    const r = new Registry();
    r.addWorker(7, 0, 100, 0);
    r.sessionOpened(7, info('s', null));
    const told: Array<[number, string]> = [];
    const view = () => workersView(r, { id: 'a', state: 'ready', startedAt: 0, workers: 1 });
    const close = (w: number, s: string): void => void told.push([w, s]);
    assert.equal(answerAdminQuery({ kind: 'close', session: 'nope' }, r, view, close).status, 404);
    assert.deepEqual(told, []);
    assert.equal(answerAdminQuery({ kind: 'close', session: 's' }, r, view, close).status, 202);
    assert.deepEqual(told, [[7, 's']]);
  });
});
