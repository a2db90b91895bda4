import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { unpackValue } from '../../src/protocol/msgpack-reader.js';
import { Kind, type EventFrame, type Position } from '../../src/protocol/frames.js';
import { LocalBus } from '../../src/bus/local-bus.js';
import type { ChannelLog, LogRead } from '../../src/bus/channel-log.js';
import { LocalChannelLog } from '../../src/channels/local-log.js';
import { startServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';

/** A bus whose log sequences but cannot be read: the hub cannot learn any start position. */
class UnreadableBus extends LocalBus {
  private readonly inner = new LocalChannelLog({ size: 10, ttlMs: 60000 });
  readonly log: ChannelLog = {
    append: (frame: EventFrame) => this.inner.append(frame),
    read: (_channel: string, _since: Position | null, _limit: number): Promise<LogRead> => Promise.reject(new Error('sequencer unreachable')),
    close: () => this.inner.close()
  };
}

describe('recovered:false without a position still reaches the client', () => {
  test('the encoders keep `recovered` when there is no offset', () => {
    const frame = { type: 'subscribed', channel: 'news', recovered: false } as const;
    assert.equal(Buffer.from(jsonCodec.encode(frame)).toString(), '{"type":"subscribed","channel":"news","recovered":false}');
    assert.deepEqual(unpackValue(binaryCodec.encode(frame)), { ok: true, value: [Kind.subscribed, 'news', false], hasBinary: false });
    // A plain subscribe without a position stays as it was.
    assert.equal(Buffer.from(jsonCodec.encode({ type: 'subscribed', channel: 'news' })).toString(), '{"type":"subscribed","channel":"news"}');
    assert.deepEqual(unpackValue(binaryCodec.encode({ type: 'subscribed', channel: 'news' })), { ok: true, value: [Kind.subscribed, 'news'], hasBinary: false });
  });

  for (const protocol of ['json', 'bin'] as const) {
    test(`a subscribe with since, the position unreadable (${protocol})`, async () => {
      const srv = await startServer({}, { bus: new UnreadableBus() });
      const c = await TestClient.connect(srv.port, { protocol, positions: true });
      try {
        c.send({ type: 'subscribe', channel: 'news', since: { offset: 3, epoch: 'e1' } });
        assert.deepEqual(await c.nextOf('subscribed'), { type: 'subscribed', channel: 'news', recovered: false });
        c.send({ type: 'subscribe', channel: 'other' });
        assert.deepEqual(await c.nextOf('subscribed'), { type: 'subscribed', channel: 'other' });
      } finally {
        await c.close();
        await srv.stop();
      }
    });
  }
});
