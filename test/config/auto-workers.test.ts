import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUTO_WORKERS_CAP, autoWorkers, parseOpenFileLimit, readOpenFileLimit, sessionsPerWorker } from '../../src/config/auto-workers.js';
import { loadConfig } from '../../src/config/load.js';
import { ZenError } from '../../src/errors.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max processes             127480               127480               processes
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

test('the open-file limit is read from /proc/self/limits text: a number, unlimited, or absent', () => {
  assert.equal(parseOpenFileLimit(LIMITS), 20000);
  assert.equal(parseOpenFileLimit(LIMITS.replace('20000                20000', 'unlimited            unlimited')), Infinity);
  assert.equal(parseOpenFileLimit('Max processes 1 1 processes\n'), null);
  // This machine is Linux: the process's own limit is there.
  assert.ok((readOpenFileLimit() ?? 0) > 0);
});

test('auto: 100,000 connections under a 20,000 open-file limit take 6 workers of 19,000 on 2 CPUs', () => {
  assert.equal(sessionsPerWorker(20000), 19000);
  assert.equal(autoWorkers({ maxConnections: 100_000, openFileLimit: 20000, cpus: 2 }), 6);
  // At the edge: exactly one worker's worth, one more connection than that.
  assert.equal(autoWorkers({ maxConnections: 19_000, openFileLimit: 20000, cpus: 1 }), 1);
  assert.equal(autoWorkers({ maxConnections: 19_001, openFileLimit: 20000, cpus: 1 }), 2);
});

test('auto never picks fewer workers than CPUs, and with no cap or no file limit picks the CPU count', () => {
  assert.equal(autoWorkers({ maxConnections: 1000, openFileLimit: 20000, cpus: 8 }), 8);
  assert.equal(autoWorkers({ maxConnections: 0, openFileLimit: null, cpus: 4 }), 4);
  assert.equal(autoWorkers({ maxConnections: 1_000_000, openFileLimit: Infinity, cpus: 2 }), 2);
});

test('auto says why it cannot: the cap, a tiny open-file limit, an unreadable limit', () => {
  const perWorker = sessionsPerWorker(20000);
  assert.equal(autoWorkers({ maxConnections: perWorker * AUTO_WORKERS_CAP, openFileLimit: 20000, cpus: 2 }), AUTO_WORKERS_CAP);
  assert.throws(
    () => autoWorkers({ maxConnections: perWorker * AUTO_WORKERS_CAP + 1, openFileLimit: 20000, cpus: 2 }),
    (err: unknown) => err instanceof ZenError && err.code === 'ERR_CONFIG_INVALID' && /needs 65 workers .* over the cap of 64; raise the open-file limit/.test(err.message)
  );
  assert.throws(
    () => autoWorkers({ maxConnections: 5000, openFileLimit: 1024, cpus: 2 }),
    (err: unknown) => err instanceof ZenError && /open-file limit 1024 leaves 768; raise it \(ulimit -n\)/.test(err.message)
  );
  assert.throws(
    () => autoWorkers({ maxConnections: 5000, openFileLimit: null, cpus: 2 }),
    (err: unknown) => err instanceof ZenError && /cannot read the open-file limit/.test(err.message)
  );
});

test('--workers auto is resolved at load to a number; other words are refused as before', () => {
  const limit = readOpenFileLimit()!;
  const config = loadConfig(new Map([['workers', 'auto'], ['max-connections', String(sessionsPerWorker(limit) * 3)]]), {});
  assert.ok(config.workers >= 3 && Number.isInteger(config.workers), `got ${config.workers}`);
  assert.equal(loadConfig(new Map(), { ZENCONN_WORKERS: 'auto', ZENCONN_MAX_CONNECTIONS: '0' }).workers > 0, true);
  assert.equal(loadConfig(new Map([['workers', '3']]), {}).workers, 3);
  assert.throws(() => loadConfig(new Map([['workers', 'many']]), {}), /--workers: expected an integer, got "many"/);
});
