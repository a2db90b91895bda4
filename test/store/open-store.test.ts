import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { createStore } from '../../src/store/open-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { maskUrl } from '../../src/log.js';
import { parseStoreUrl } from '../../src/store/store-url.js';

test('sqlite:PATH is relative to the current directory; sqlite::memory: is in memory', () => {
  const store = createStore('sqlite:data/zenconn.db');
  assert.ok(store instanceof SqliteStore);
  assert.equal(store.path, resolve('data/zenconn.db'));
  assert.deepEqual(parseStoreUrl('sqlite::memory:'), { kind: 'sqlite', path: ':memory:' });
  assert.deepEqual(parseStoreUrl('sqlite:/var/lib/z.db'), { kind: 'sqlite', path: '/var/lib/z.db' });
});

test('postgres:// and postgresql:// select PostgreSQL; anything else is ERR_STORE_URL', () => {
  assert.equal(createStore('postgres://u@h/db').kind, 'postgres');
  assert.equal(createStore('postgresql://u@h/db').kind, 'postgres');
  for (const url of ['sqlite:', 'mysql://u@h/db', 'data/zenconn.db', '', 'postgres:/h/db']) {
    assert.throws(() => createStore(url), { code: 'ERR_STORE_URL' }, url);
  }
});

test('maskUrl hides the password and nothing else', () => {
  assert.equal(maskUrl('mysql://u:pa/ss@h/db'), 'mysql://u:****@h/db');
  assert.equal(maskUrl('redis://:p@ss?w#d@h:6379/0'), 'redis://:****@h:6379/0');
  assert.equal(maskUrl('postgres://app:s3cr%40t@db:5432/x?options=-c%20a%3Db'), 'postgres://app:****@db:5432/x?options=-c%20a%3Db');
  assert.equal(maskUrl('postgres://app@db/x'), 'postgres://app@db/x');
  assert.equal(maskUrl('sqlite:data/z.db'), 'sqlite:data/z.db');
});
