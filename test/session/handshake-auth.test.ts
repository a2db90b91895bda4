import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';

// Header values as they arrive: the HTTP parser trims `Bearer ` to a bare `Bearer`.
const MALFORMED = ['Basic dXNlcjpwdw==', 'Bearer', 'Bearer ', '', 'Bearer two parts'];

describe('the Authorization header on an upgrade and on the HTTP API', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer(); // anonymous sessions allowed: a fallback would be accepted
  });
  after(() => srv.stop());

  test('a malformed Authorization header gets 401, with or without ?access_token', async () => {
    const good = await makeToken('alice');
    for (const value of MALFORMED) {
      for (const path of ['/', `/?access_token=${good}`]) {
        await assert.rejects(
          TestClient.connect(srv.port, { headers: { authorization: value }, path }),
          (err: { status?: number }) => err.status === 401,
          `${JSON.stringify(value)} on ${path}`
        );
      }
    }
  });

  test('a well-formed Bearer header, ?access_token and no token at all still connect', async () => {
    const token = await makeToken('alice');
    for (const options of [{ token }, { headers: { authorization: `bearer   ${token}  ` } }, { path: `/?access_token=${token}` }, {}]) {
      const c = await TestClient.connect(srv.port, options);
      assert.match(c.sessionId, /^[0-9a-f-]{36}$/);
      c.ws.terminate();
    }
  });

  test('POST /api/broadcast with a malformed Authorization header gets 401 even with a good ?access_token', async () => {
    const token = await makeToken('pub', ['publish']);
    const body = JSON.stringify({ channel: 'news', data: 1 });
    const post = (authorization: string | null) =>
      fetch(`http://127.0.0.1:${srv.port}/api/broadcast?access_token=${token}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization === null ? {} : { authorization }) },
        body
      });
    for (const value of ['Basic dXNlcjpwdw==', 'Bearer']) {
      const r = await post(value);
      assert.equal(r.status, 401, value);
      assert.match(((await r.json()) as { error: string }).error, /malformed Authorization header/);
    }
    assert.equal((await post(null)).status, 200);
    assert.equal((await post(`Bearer ${token}`)).status, 200);
  });
});
