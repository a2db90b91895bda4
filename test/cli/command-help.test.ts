import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMAND_SPECS } from '../../src/cli/command-help.js';
import { FILTER_NAMES } from '../../src/audit/audit-query.js';
import { OPTIONS, flagName } from '../../src/config/options.js';
import { runZen } from '../helpers/process.js';

test('each command --help lists each of its options, with their defaults', async () => {
  for (const [command, spec] of Object.entries(COMMAND_SPECS)) {
    const { code, stdout } = await runZen([command, '--help']);
    assert.equal(code, 0, command);
    assert.doesNotMatch(stdout, /^Commands:/m, `${command} --help is its own, not the general help`);
    for (const f of spec.flags) {
      assert.ok(stdout.includes(`--${f.name}`), `${command} --help lacks --${f.name}`);
      if (f.default !== undefined) assert.ok(stdout.includes(`(default: ${f.default})`), `${command} --help lacks the default of --${f.name}`);
    }
    for (const { key } of spec.config) assert.ok(stdout.includes(flagName(key)), `${command} --help lacks ${flagName(key)}`);
  }
});

test('audit --help names every filter; sign --help says it needs --channel-secret; token --help --jwt-secret', async () => {
  for (const name of FILTER_NAMES) assert.ok(COMMAND_SPECS.audit.flags.some((f) => f.name === name), `audit spec lacks --${name}`);
  const audit = (await runZen(['audit', '--help'])).stdout;
  for (const f of ['--channel', '--since', '--format']) assert.ok(audit.includes(f), f);
  assert.match((await runZen(['sign', '--help'])).stdout, /--channel-secret .*\(required\)/);
  assert.match((await runZen(['token', '--help'])).stdout, /--jwt-secret .*\(required\)/);
  assert.ok(OPTIONS.channelSecret);
});
