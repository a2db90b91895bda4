import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pack } from 'msgpackr';
import { startServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { makeToken } from '../helpers/tokens.js';
import type { ProtocolName } from '../../src/protocol/codec.js';

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  const op = Math.floor(Math.random() * 4);
  if (op === 0 && out.length > 0) out[Math.floor(Math.random() * out.length)] ^= 1 << Math.floor(Math.random() * 8);
  if (op === 1) return out.subarray(0, Math.floor(Math.random() * out.length));
  if (op === 2) return Buffer.concat([out, out]);
  if (op === 3) return randomBytes(1 + Math.floor(Math.random() * 64));
  return out;
}

for (const protocol of ['json', 'bin'] as ProtocolName[]) {
  test(`random and mutated ${protocol} frames over a real socket: one answer each, the session stays open`, async () => {
    const srv = await startServer();
    try {
      // A publish holder is not rate-limited, so every frame reaches the decoder.
      const c = await TestClient.connect(srv.port, { protocol, token: await makeToken('fuzzer', ['publish']) });
      const seeds: Buffer[] =
        protocol === 'json'
          ? ['{"type":"subscribe","channel":"news"}', '{"type":"broadcast","channel":"news","data":{"a":[1,2,{"b":null}]}}', '{"type":"unsubscribe","channel":"news"}'].map((s) => Buffer.from(s))
          : [pack([1, 'news']), pack([6, 'news', { a: [1, 2, Buffer.from([1, 2])] }]), pack([4, 'news'])];
      const N = 2000;
      // Text frames must be valid UTF-8 (ws closes with 1007 otherwise, as RFC 6455 says).
      for (let i = 0; i < N; i++) {
        const m = mutate(seeds[i % seeds.length]!);
        if (protocol === 'bin') c.sendRaw(m, true);
        else c.sendRaw(m.toString('utf8'), false);
      }
      let answers = 0;
      while (answers < N) {
        const f = await c.next(() => true, 5000);
        if (f.type !== 'event') answers++;
      }
      assert.equal(answers, N);
      assert.equal(c.closeCode, null);
      assert.deepEqual(await c.subscribe('after-fuzz'), { type: 'subscribed', channel: 'after-fuzz' });
      c.ws.terminate();
    } finally {
      await srv.stop();
    }
  });
}
