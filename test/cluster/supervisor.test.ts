import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { agentForceExitMs, restartDelayMs, statsIntervalMs, workerExecArgv, workersStopMs, MAX_RESTART_DELAY_MS } from '../../src/cluster/supervisor.js';

describe('supervisor policies', () => {
  test('restart backoff: at once, then 1 s doubling, capped at 30 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(restartDelayMs), [0, 1000, 2000, 4000, 8000, 16000, 30000]);
    assert.equal(restartDelayMs(1000), MAX_RESTART_DELAY_MS);
  });


  test("workers get a small young generation unless it is 0 or the agent's own flags or NODE_OPTIONS set one", () => {
    assert.deepEqual(workerExecArgv(['--enable-source-maps'], undefined, 2), ['--enable-source-maps', '--max-semi-space-size=2']);
    assert.deepEqual(workerExecArgv([], '', 0), []);
    assert.deepEqual(workerExecArgv(['--max-semi-space-size=8'], undefined, 2), ['--max-semi-space-size=8']);
    assert.deepEqual(workerExecArgv([], '--max-old-space-size=4096 --max-semi-space-size=1', 2), []);
  });

  test('workers report every second, or 4 times per heartbeat timeout when it is short', () => {
    assert.equal(statsIntervalMs(10000), 1000);
    assert.equal(statsIntervalMs(1000), 250);
  });

  test('the stop deadlines follow --shutdown-timeout-ms, however large', () => {
    // The default keeps its figures: workers get 11 s, the agent exits anyway at 14.5 s.
    assert.equal(workersStopMs(10000), 11000);
    assert.equal(agentForceExitMs(10000), 14500);
    // A minute is a minute (it was cut to 13 s and 14.5 s).
    assert.equal(workersStopMs(60000), 61000);
    assert.equal(agentForceExitMs(60000), 64500);
    assert.equal(workersStopMs(600000), 601000);
    assert.ok(agentForceExitMs(600000) > workersStopMs(600000), 'the agent outlives its workers\' deadline');
  });

});
