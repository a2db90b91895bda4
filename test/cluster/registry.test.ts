import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from '../../src/cluster/registry.js';
import type { SessionInfo } from '../../src/cluster/ipc-messages.js';

const info = (id: string, user: string | null = null): SessionInfo => ({ id, remoteAddr: '127.0.0.1', user, protocol: 'json', connectedAt: 0 });

describe('Registry', () => {
  test('follows opens, closes, subscriptions and exits; queries by channel and user', () => {
    const r = new Registry();
    r.addWorker(1, 0, 100, 0);
    r.addWorker(2, 1, 101, 0);
    r.setServerId(1, 'w1');
    r.sessionOpened(1, info('s1', 'alice'));
    r.sessionOpened(1, info('s2'));
    r.sessionOpened(2, info('s3', 'alice'));
    r.subscribed(1, 's1', 'news');
    r.subscribed(2, 's3', 'news');
    r.subscribed(2, 's3', 'private.x');
    assert.deepEqual(r.workers(10).map((w) => [w.pid, w.state, w.sessions, w.uptimeMs]), [[100, 'starting', 2, 10], [101, 'starting', 1, 10]]);
    assert.deepEqual(r.sessions({ channel: 'news', limit: 10 }).sessions.map((s) => s.id).sort(), ['s1', 's3']);
    assert.deepEqual(r.sessions({ user: 'alice', limit: 10 }).sessions.map((s) => s.id).sort(), ['s1', 's3']);
    assert.deepEqual(r.sessions({ channel: 'news', user: 'alice', limit: 1 }).truncated, true);
    assert.equal(r.sessions({ channel: 'news', limit: 10 }).sessions.find((s) => s.id === 's1')!.worker, 'w1');

    r.unsubscribed(1, 's1', 'news');
    assert.deepEqual(r.sessions({ channel: 'news', limit: 10 }).sessions.map((s) => s.id), ['s3']);
    r.sessionClosed(1, 's2');
    assert.equal(r.sessionCount(1), 1);

    const lost = r.removeWorker(2);
    assert.deepEqual(lost.map((s) => [s.id, [...s.channels].sort()]), [['s3', ['news', 'private.x']]]);
    assert.deepEqual(r.sessions({ channel: 'news', limit: 10 }).sessions, []);
    assert.equal(r.totalSessions, 1);
    assert.deepEqual(r.workers().map((w) => w.pid), [100]);
  });

  test('events from a worker about a session it does not hold change nothing', () => {
    const r = new Registry();
    r.addWorker(1, 0, 100);
    r.addWorker(2, 1, 101);
    r.sessionOpened(1, info('s1'));
    r.sessionOpened(2, info('s1'));
    r.subscribed(2, 's1', 'x');
    r.sessionClosed(2, 's1');
    assert.equal(r.sessionCount(1), 1);
    assert.equal(r.sessionCount(2), 0);
    assert.deepEqual(r.sessions({ channel: 'x', limit: 10 }).sessions, []);
    r.sessionOpened(9, info('s9'));
    assert.equal(r.totalSessions, 1);
  });

  test('stats and state show in the worker view', () => {
    const r = new Registry();
    r.addWorker(1, 0, 100, 0);
    r.setState(1, 'ready', 9001);
    r.setStats(1, { sessions: 0, channels: 3, messagesInPerSec: 7, messagesOutPerSec: 70, heapUsedBytes: 1, rssBytes: 2, loopLagMs: 0.5, peers: 1, undeliverable: 0 });
    const [w] = r.workers(0);
    assert.deepEqual([w!.state, w!.port, w!.channels, w!.messagesInPerSec, w!.messagesOutPerSec, w!.rssBytes, w!.loopLagMs, w!.peers], ['ready', 9001, 3, 7, 70, 2, 0.5, 1]);
    r.setState(1, 'draining');
    assert.equal(r.workers(0)[0]!.state, 'draining');
  });
});
