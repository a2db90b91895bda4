import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';

test("the README says what ZENCONN_TEST_TIMEOUT_MS bounds: each test, as the runner passes it to node's --test-timeout", () => {
  const runner = readFileSync(join(ROOT, 'scripts', 'run-tests.js'), 'utf8');
  const m = /const (\w+) = process\.env\.ZENCONN_TEST_TIMEOUT_MS \?\? '(\d+)'/.exec(runner);
  assert.ok(m, 'scripts/run-tests.js reads ZENCONN_TEST_TIMEOUT_MS');
  assert.ok(runner.includes('`--test-timeout=${' + m[1] + '}`'), 'the value is node --test-timeout, which bounds each test');
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
  const said = /`ZENCONN_TEST_TIMEOUT_MS` \(default (\d+) per (\w+)/.exec(readme);
  assert.ok(said, 'README.md documents ZENCONN_TEST_TIMEOUT_MS with its default');
  assert.equal(said[1], m[2], 'the default the README gives');
  assert.equal(said[2], 'test', 'the unit the README gives');
  assert.doesNotMatch(runner, /per (test )?file/i, "the runner's comment does not call it per file");
});
