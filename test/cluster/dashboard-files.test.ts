import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';
import { FILTER_NAMES } from '../../src/audit/audit-query.js';
import { DASHBOARD_DIR } from '../../src/http/dashboard.js';

const ADMIN = join(ROOT, 'admin');

test('the dashboard loads nothing from elsewhere: no URL in its files but the SVG namespace', () => {
  const files = readdirSync(ADMIN);
  assert.ok(files.includes('index.html'));
  for (const name of files) {
    const text = readFileSync(join(ADMIN, name), 'utf8');
    const urls = (text.match(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'"`)]*/gi) ?? []).filter((u) => u !== 'http://www.w3.org/2000/svg');
    assert.deepEqual(urls, [], `${name} names no other site`);
  }
});

test('the audit form of the dashboard has every filter of zenconn audit', () => {
  const html = readFileSync(join(ADMIN, 'index.html'), 'utf8');
  const form = /<form id="audit-form"[\s\S]*?<\/form>/.exec(html);
  assert.ok(form, 'index.html has #audit-form');
  const names = new Set([...form[0].matchAll(/name="([a-z]+)"/g)].map((m) => m[1]!));
  for (const f of FILTER_NAMES) assert.ok(names.has(f), `the audit form lacks ${f}`);
});

test('the package ships the dashboard: package.json files, the Dockerfile and .dockerignore', () => {
  assert.equal(DASHBOARD_DIR, ADMIN, 'served from the admin/ folder of the package');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  assert.ok(pkg.files.includes('admin'), 'package.json files lists admin');
  const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(docker, /^COPY admin \.\/admin$/m);
  assert.match(docker, /^COPY --from=build \/app\/admin \.\/admin$/m);
  assert.match(readFileSync(join(ROOT, '.dockerignore'), 'utf8'), /^!admin\/$/m);
});
