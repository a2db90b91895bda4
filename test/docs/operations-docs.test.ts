import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIONS, envName, flagName } from '../../src/config/options.js';
import { ERRORS } from '../../src/errors.js';
import { ROOT } from '../helpers/process.js';

const ops = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');

test('docs/operations.md documents every option with its flag and env var', () => {
  for (const key of Object.keys(OPTIONS)) {
    assert.ok(ops.includes('`' + flagName(key) + '`'), `${flagName(key)} is missing`);
    assert.ok(ops.includes('`' + envName(key) + '`'), `${envName(key)} is missing`);
  }
});

test('docs/operations.md lists every error code of the catalogue', () => {
  for (const code of Object.keys(ERRORS)) assert.ok(ops.includes('`' + code + '`'), `${code} is missing`);
});
