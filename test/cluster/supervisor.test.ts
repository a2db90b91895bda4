import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { restartDelayMs, statsIntervalMs, MAX_RESTART_DELAY_MS } from '../../src/cluster/supervisor.js';

describe('supervisor policies', () => {
  test('restart backoff: at once, then 1 s doubling, capped at 30 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(restartDelayMs), [0, 1000, 2000, 4000, 8000, 16000, 30000]);
    assert.equal(restartDelayMs(1000), MAX_RESTART_DELAY_MS);
  });


  test('workers report every second, or 4 times per heartbeat timeout when it is short', () => {
    assert.equal(statsIntervalMs(10000), 1000);
    assert.equal(statsIntervalMs(1000), 250);
  });

});
