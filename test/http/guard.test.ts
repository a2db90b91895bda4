import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { ZenError } from '../../src/errors.js';
import { TokenVerifier } from '../../src/auth/tokens.js';
import { checkGrant, identify, requireGrant } from '../../src/http/guard.js';
import { TEST_JWT_SECRET } from '../helpers/server.js';
import { makeToken } from '../helpers/tokens.js';

const verifier = new TokenVerifier({ secret: TEST_JWT_SECRET, publicKeyFile: null });

/** Only the headers are read by the guard. */
function request(authorization?: string): IncomingMessage {
  return { headers: authorization === undefined ? {} : { authorization } } as IncomingMessage;
}

const url = (query = ''): URL => new URL(`http://localhost/api/x${query}`);

describe('http guard', () => {
  test('identify reads the bearer header or access_token; 401 without a token or with a bad one', async () => {
    const token = await makeToken('alice', ['audit']);
    assert.equal((await identify(request(`Bearer ${token}`), url(), verifier)).userId, 'alice');
    assert.equal((await identify(request(), url(`?access_token=${token}`), verifier)).userId, 'alice');
    await assert.rejects(identify(request(), url(), verifier), { code: 'ERR_AUTH_TOKEN_MISSING', status: 401 });
    await assert.rejects(identify(request('Bearer nope'), url(), verifier), { code: 'ERR_AUTH_TOKEN_INVALID', status: 401 });
  });

  test('checkGrant throws 403 naming the missing grant', async () => {
    const identity = await identify(request(`Bearer ${await makeToken('bob', ['publish'])}`), url(), verifier);
    checkGrant(identity, 'publish');
    assert.throws(() => checkGrant(identity, 'admin'), (err: ZenError) => {
      assert.equal(err.code, 'ERR_AUTH_FORBIDDEN');
      assert.equal(err.status, 403);
      assert.match(err.message, /"admin"/);
      return true;
    });
  });

  test('requireGrant returns the identity, or tells onRefused (with the user when the token was valid) and throws', async () => {
    const refused: Array<{ code: string; userId: string | null }> = [];
    const onRefused = (_req: IncomingMessage, err: ZenError, userId: string | null): void => {
      refused.push({ code: err.code, userId });
    };
    const admin = await requireGrant(request(`Bearer ${await makeToken('root', ['admin'])}`), url(), verifier, 'admin', onRefused);
    assert.equal(admin.userId, 'root');
    assert.deepEqual(refused, []);
    await assert.rejects(requireGrant(request(`Bearer ${await makeToken('carol', ['publish'])}`), url(), verifier, 'admin', onRefused), { status: 403 });
    await assert.rejects(requireGrant(request(), url(), verifier, 'admin', onRefused), { status: 401 });
    await assert.rejects(requireGrant(request('Bearer nope'), url(), verifier, 'admin'), { status: 401 });
    assert.deepEqual(refused, [
      { code: 'ERR_AUTH_FORBIDDEN', userId: 'carol' },
      { code: 'ERR_AUTH_TOKEN_MISSING', userId: null }
    ]);
  });
});
