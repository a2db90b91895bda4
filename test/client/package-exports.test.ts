/** `zenconn/client` as a package user gets it: through package.json `exports`, with declarations, inside `files`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';

interface Pkg {
  exports: Record<string, Record<string, string>>;
  files: string[];
  bin: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Pkg;

test("import 'zenconn/client' resolves (package self-reference) to the library", async () => {
  const lib = (await import('zenconn/client' as string)) as Record<string, unknown>;
  for (const name of ['connect', 'ZenClient', 'ZenError', 'Subscription', 'backoffDelay']) assert.equal(typeof lib[name], 'function', name);
});

test('the ./client export names its declarations, its browser bundle and its module; all are shipped by `files`', () => {
  const entry = pkg.exports['./client']!;
  assert.deepEqual(Object.keys(entry), ['types', 'browser', 'import'], 'types first, as TypeScript requires');
  const dts = readFileSync(join(ROOT, entry.types!), 'utf8');
  assert.match(dts, /export \{[^}]*\bconnect\b/);
  const clientDts = readFileSync(join(ROOT, 'dist/src/client/client.d.ts'), 'utf8');
  assert.match(clientDts, /export declare function connect\(url: string, options\?: ConnectOptions\): ZenClient;/);
  const declarations = readdirSync(join(ROOT, 'dist/src/client'))
    .filter((f) => f.endsWith('.d.ts'))
    .map((f) => readFileSync(join(ROOT, 'dist/src/client', f), 'utf8'))
    .join('\n')
    .replace(/\/\*[\s\S]*?\*\//g, '');
  assert.doesNotMatch(declarations, /\bany\b/, 'no any in the exported types');
  assert.doesNotMatch(clientDts, /NodeJS\.|from 'node:/, 'no Node types in the declarations');
  for (const p of Object.values(entry)) {
    assert.ok(pkg.files.some((f) => p.replace(/^\.\//, '').startsWith(f + '/')), `${p} is under a "files" entry`);
  }
  assert.ok(existsSync(join(ROOT, entry.import!)));
  assert.equal(pkg.bin.zenconn, 'bin/zenconn.js', 'the CLI stays');
});
