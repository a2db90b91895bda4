import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLED_PUBLIC, loadConfig } from '../../src/config/load.js';
import { ROOT } from '../helpers/process.js';

/** Runs `fn` with the working directory in a fresh folder that has no ./public. */
function inEmptyFolder<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'zenconn-static-root-'));
  const before = process.cwd();
  process.chdir(dir);
  try {
    return fn(dir);
  } finally {
    process.chdir(before);
  }
}

test('the bundled console is the package’s own public/, not a folder of the working directory', () => {
  assert.equal(BUNDLED_PUBLIC, join(ROOT, 'public'));
  assert.ok(existsSync(join(BUNDLED_PUBLIC, 'index.html')));
});

test('--public not given: ./public when it exists, the bundled console when it does not', () => {
  assert.equal(loadConfig(new Map(), {}).public, './public', 'the repository root has a ./public');
  inEmptyFolder(() => assert.equal(loadConfig(new Map(), {}).public, BUNDLED_PUBLIC));
  // An empty env var is "not set", as for every option.
  inEmptyFolder(() => assert.equal(loadConfig(new Map(), { ZENCONN_PUBLIC: '' }).public, BUNDLED_PUBLIC));
});

test('a --public that is given stays as it is, even missing (flag, env and config file all count as given)', () => {
  inEmptyFolder((dir) => {
    assert.equal(loadConfig(new Map([['public', './public']]), {}).public, './public');
    assert.equal(loadConfig(new Map(), { ZENCONN_PUBLIC: './public' }).public, './public');
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ public: './public' }));
    assert.equal(loadConfig(new Map([['config', file]]), {}).public, './public');
  });
});

test('--public off turns static files off (null), from a flag, env or the config file; an empty flag is still refused', () => {
  assert.equal(loadConfig(new Map([['public', 'off']]), {}).public, null);
  assert.equal(loadConfig(new Map(), { ZENCONN_PUBLIC: 'off' }).public, null);
  inEmptyFolder((dir) => {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ public: 'off' }));
    assert.equal(loadConfig(new Map([['config', file]]), {}).public, null);
  });
  assert.throws(() => loadConfig(new Map([['public', '']]), {}), /--public: expected a non-empty string/);
  // A folder named off stays reachable by a path.
  assert.equal(loadConfig(new Map([['public', './off']]), {}).public, './off');
});
