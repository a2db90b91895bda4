import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Runs from dist/test/http; the sources are read, not the compiled files.
const httpDir = fileURLToPath(new URL('../../../src/http/', import.meta.url));

test('src/http holds generic parts only: no import from channels, session, cluster, node.ts or cli', () => {
  const files = readdirSync(httpDir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('guard.ts') && files.includes('router.ts'), `read ${httpDir}`);
  const upward: string[] = [];
  for (const f of files) {
    const text = readFileSync(httpDir + f, 'utf8');
    for (const m of text.matchAll(/from '(\.\.?\/[^']+)'/g)) {
      if (/^\.\.\/(channels|session|cluster|cli)\/|^\.\.\/node\.js$/.test(m[1]!)) upward.push(`${f}: ${m[1]}`);
    }
  }
  assert.deepEqual(upward, []);
});
