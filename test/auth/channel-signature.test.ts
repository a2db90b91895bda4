import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { signChannel, verifyChannelSignature } from '../../src/auth/channel-signature.js';
import { runZen } from '../helpers/process.js';

const SESSION = '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1d';

describe('channel signatures', () => {
  test('channel signatures: lowercase hex HMAC-SHA256 of "<session>@<channel>", checked in constant time', () => {
    const t = signChannel('s3cret', SESSION, 'private.x');
    assert.match(t, /^[0-9a-f]{64}$/);
    assert.equal(verifyChannelSignature('s3cret', SESSION, 'private.x', t), true);
    assert.equal(verifyChannelSignature('s3cret', SESSION, 'private.y', t), false);
    assert.equal(verifyChannelSignature('s3cret', SESSION, 'private.x', t.toUpperCase()), false);
    assert.equal(verifyChannelSignature('s3cret', SESSION, 'private.x', t.slice(1)), false);
  });

  test('signing refuses a session that is not a canonical UUID, so "<session>@<channel>" stays unambiguous', () => {
    for (const session of ['S@private.admin', 'S', '', SESSION.toUpperCase(), SESSION.replace(/-/g, ''), `{${SESSION}}`, `${SESSION} `, `${SESSION}@x`]) {
      assert.throws(() => signChannel('s3cret', session, 'team-7'), /canonical UUID/, JSON.stringify(session));
    }
  });

  test('only exactly 64 lowercase hex characters verify', () => {
    const t = signChannel('s3cret', SESSION, 'private.x');
    // Each character shifted by +0x100 reads the same through a latin1 conversion.
    const shifted = [...t].map((c) => String.fromCharCode(c.charCodeAt(0) + 0x100)).join('');
    assert.equal(verifyChannelSignature('s3cret', SESSION, 'private.x', shifted), false);
    for (const bad of [t + '0', ` ${t}`, `${t}\n`, t.slice(0, 63) + 'g', t.slice(0, 62) + t.slice(62).toUpperCase(), '', Buffer.from(t, 'hex').toString('latin1')]) {
      assert.equal(verifyChannelSignature('s3cret', SESSION, 'private.x', bad), false, JSON.stringify(bad));
    }
    // A session that is not canonical never verifies, even with the HMAC of its bytes.
    assert.equal(verifyChannelSignature('s3cret', SESSION.toUpperCase(), 'private.x', t), false);
  });

  test('zenconn sign refuses a session that is not a canonical UUID with exit 2 and one clear line', async () => {
    for (const session of ['S@private.admin', SESSION.toUpperCase()]) {
      const r = await runZen(['sign', '--session', session, '--channel', 'team-7', '--channel-secret', 's3cret']);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^zenconn: sign: --session must be .*canonical UUID \(lowercase, hyphenated\)/);
    }
    const ok = await runZen(['sign', '--session', SESSION, '--channel', 'private.team-7', '--channel-secret', 's3cret']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, signChannel('s3cret', SESSION, 'private.team-7') + '\n');
  });
});
