#!/usr/bin/env node
// Runs the compiled test files with node's own test runner.
// `node scripts/run-tests.js [substring …]` runs only the files whose path contains one of them.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'dist', 'test');

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
let files = walk(testDir).sort();
if (filters.length > 0) files = files.filter((f) => filters.some((s) => relative(root, f).includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.ZENCONN_TEST_CONCURRENCY ?? '2';
// A hang guard per test (node's --test-timeout applies to each test, not to a file), not a
// speed target: the image build test alone allows its npm ci and tsc 280 s (it took 178 s
// on this machine in a slow phase), so a test gets 10 min.
const timeoutMs = process.env.ZENCONN_TEST_TIMEOUT_MS ?? '600000';
const r = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeoutMs}`, ...files],
  { stdio: 'inherit', cwd: root }
);
process.exit(r.status ?? 1);
