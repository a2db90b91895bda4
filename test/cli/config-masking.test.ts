import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { runZen } from '../helpers/process.js';

const PASSWORD = 'hunter2-s3cret';

describe('configuration errors do not print passwords', () => {
  test('a bad database or bus URL is printed with its password masked, from a flag or the environment', async () => {
    const cases: Array<{ args: string[]; env?: NodeJS.ProcessEnv; shown: string }> = [
      { args: ['serve', '--port', '0', '--database', `mysql://root:${PASSWORD}@db:3306/zen`], shown: 'mysql://root:****@db:3306/zen' },
      { args: ['serve', '--port', '0'], env: { ZENCONN_DATABASE: `mysql://root:${PASSWORD}@db/zen` }, shown: 'mysql://root:****@db/zen' },
      { args: ['serve', '--port', '0', '--bus', `http://:${PASSWORD}@redis:6379/0`], shown: 'http://:****@redis:6379/0' },
      { args: ['agent', '--port', '0', '--bus', `valkey://default:${PASSWORD}@redis:6379/0`], shown: 'valkey://default:****@redis:6379/0' }
    ];
    for (const { args, env, shown } of cases) {
      const r = await runZen(args, { env });
      const where = `${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      assert.equal(r.code, 2, where);
      assert.ok(r.stderr.includes(shown), where);
      assert.ok(!r.stderr.includes(PASSWORD) && !r.stdout.includes(PASSWORD), where);
    }
  });
});
