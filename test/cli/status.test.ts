import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus } from '../../src/cli/status.js';

describe('zenconn status', () => {
  test('zenconn status prints one row per worker and the totals', () => {
    const w = { id: 'w', slot: 0, pid: 42, state: 'ready' as const, startedAt: '', uptimeMs: 65000, port: null, sessions: 5, channels: 1, messagesInPerSec: 3, messagesOutPerSec: 30, heapUsedBytes: 1048576, rssBytes: 10485760, loopLagMs: 1.25, peers: 1, undeliverable: 0, forwarded: 0 };
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
