import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { TokenVerifier, bearerToken } from '../../src/auth/tokens.js';
import { startServer, tempDir } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';

describe('token verification', () => {
  for (const [alg, type, opts] of [
    ['RS256', 'rsa', { modulusLength: 2048 }],
    ['ES256', 'ec', { namedCurve: 'P-256' }]
  ] as const) {
    test(`${alg} with a public key file: sub and grants; a token of another key is refused`, async () => {
      const dir = tempDir();
      const pair = generateKeyPairSync(type as 'rsa', opts as { modulusLength: number });
      const other = generateKeyPairSync(type as 'rsa', opts as { modulusLength: number });
      const file = join(dir, 'pub.pem');
      writeFileSync(file, pair.publicKey.export({ type: 'spki', format: 'pem' }));
      const v = new TokenVerifier({ secret: null, publicKeyFile: file });
      const sign = (key: typeof pair.privateKey, grants: unknown) =>
        new SignJWT({ grants }).setProtectedHeader({ alg }).setSubject('carol').setExpirationTime('5m').sign(key);
      const id = await v.verify(await sign(pair.privateKey, ['publish', 'nonsense', 7]));
      assert.equal(id.userId, 'carol');
      assert.deepEqual([...id.grants], ['publish']);
      await assert.rejects(v.verify(await sign(other.privateKey, [])), /invalid token/);
      // A server configured with the key accepts the token on the upgrade.
      const srv = await startServer({ 'jwt-public-key': file });
      try {
        const c = await TestClient.connect(srv.port, { token: await sign(pair.privateKey, ['broadcast']) });
        c.ws.terminate();
      } finally {
        await srv.stop();
      }
    });
  }

  test('an HS256 token is not accepted when only a public key is configured (no algorithm confusion)', async () => {
    const dir = tempDir();
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const file = join(dir, 'pub.pem');
    const pem = pair.publicKey.export({ type: 'spki', format: 'pem' });
    writeFileSync(file, pem);
    const v = new TokenVerifier({ secret: null, publicKeyFile: file });
    const forged = await new SignJWT({ grants: ['admin'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('mallory').sign(new TextEncoder().encode(String(pem)));
    await assert.rejects(v.verify(forged), /invalid token/);
  });

  test('bearer token from the header first, then ?access_token', () => {
    assert.equal(bearerToken('Bearer abc', new URLSearchParams('access_token=q')), 'abc');
    assert.equal(bearerToken(undefined, new URLSearchParams('access_token=q')), 'q');
    for (const malformed of ['Basic xyz', 'Bearer', 'Bearer ', '', 'Bearer a b', 'Token abc']) {
      assert.throws(() => bearerToken(malformed, new URLSearchParams('access_token=q')), /invalid token: malformed Authorization header/, JSON.stringify(malformed));
    }
  });

  test('with both a secret and a public key, an expired HS256 token is reported as expired', async () => {
    const dir = tempDir();
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const file = join(dir, 'pub.pem');
    writeFileSync(file, pair.publicKey.export({ type: 'spki', format: 'pem' }));
    const v = new TokenVerifier({ secret: 's3cret', publicKeyFile: file });
    const past = Math.floor(Date.now() / 1000) - 3600;
    const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('dave').setExpirationTime(past).sign(new TextEncoder().encode('s3cret'));
    await assert.rejects(v.verify(hs), (err: Error) => err.message === 'invalid token: expired');
    const rs = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('dave').setExpirationTime(past).sign(pair.privateKey);
    await assert.rejects(v.verify(rs), (err: Error) => err.message === 'invalid token: expired');
    // Both keys still work for tokens that are valid.
    const ok = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('dave').setExpirationTime('5m').sign(new TextEncoder().encode('s3cret'));
    assert.equal((await v.verify(ok)).userId, 'dave');
    const okRs = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('erin').setExpirationTime('5m').sign(pair.privateKey);
    assert.equal((await v.verify(okRs)).userId, 'erin');
  });
});
