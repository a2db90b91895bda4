import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { jsonCodec, encodeClientFrame as encodeJson } from '../../src/protocol/json-codec.js';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { encodeBinaryClientFrame as encodeBin } from '../../src/protocol/client-codec.js';
import { CHANNEL_RE, type ClientFrame } from '../../src/protocol/frames.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import { assertFailure } from './helpers.js';

/** Case variants of the `private.` prefix: they would look private and be public. */
const LOOKALIKES = ['Private.x', 'PRIVATE.x', 'pRiVaTe.team-7', 'privatE.a.b', 'Private.'];

describe('case variants of the private. prefix are invalid channel names', () => {
  test('the name rule refuses them and keeps private., names that merely contain it, and other names', () => {
    for (const name of LOOKALIKES) assert.equal(CHANNEL_RE.test(name), false, name);
    for (const name of ['private.x', 'private.', 'private', 'Private', 'privatex', 'Privately', 'x.Private.y', 'news']) {
      assert.equal(CHANNEL_RE.test(name), true, name);
    }
  });

  test('both codecs answer them with "invalid channel"', () => {
    for (const channel of LOOKALIKES) {
      const frames: ClientFrame[] = [
        { type: 'subscribe', channel },
        { type: 'unsubscribe', channel },
        { type: 'broadcast', channel, data: 1 }
      ];
      for (const f of frames) {
        assertFailure(jsonCodec.decode(Buffer.from(encodeJson(f)), false), channel, ['invalid channel'], `json ${f.type} ${channel}`);
        assertFailure(binaryCodec.decode(Buffer.from(encodeBin(f)), true), channel, ['invalid channel'], `bin ${f.type} ${channel}`);
      }
    }
  });

  describe('over a real server', () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer();
    });
    after(() => srv.stop());

    test('a socket subscribing or broadcasting to one gets an "invalid channel" error', async () => {
      for (const protocol of ['json', 'bin'] as const) {
        const c = await TestClient.connect(srv.port, { protocol, token: await makeToken('u', ['private', 'publish']) });
        for (const channel of LOOKALIKES) {
          c.send({ type: 'subscribe', channel });
          assert.deepEqual(await c.nextOf('error'), { type: 'error', channel, errors: ['invalid channel'] }, `${protocol} subscribe ${channel}`);
          c.send({ type: 'broadcast', channel, data: 1 });
          assert.deepEqual(await c.nextOf('error'), { type: 'error', channel, errors: ['invalid channel'] }, `${protocol} broadcast ${channel}`);
        }
        // The lowercase prefix still is a private channel, admitted here by the grant.
        assert.deepEqual(await c.subscribe('private.x'), { type: 'subscribed', channel: 'private.x' });
        c.ws.terminate();
      }
    });

    test('POST /api/broadcast to one is 400 invalid channel', async () => {
      const token = await makeToken('pub', ['publish']);
      const post = (channel: string) =>
        fetch(`http://127.0.0.1:${srv.port}/api/broadcast`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ channel, data: 1 })
        });
      for (const channel of LOOKALIKES) {
        const r = await post(channel);
        assert.equal(r.status, 400, channel);
        assert.match(((await r.json()) as { error: string }).error, /invalid channel/, channel);
      }
      assert.equal((await post('news')).status, 200);
    });
  });
});
