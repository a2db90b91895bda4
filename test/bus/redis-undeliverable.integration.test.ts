import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { RedisBus } from '../../src/bus/redis-bus.js';
import { RedisKeys } from '../../src/bus/redis-keys.js';
import { decodeChannelMessage, encodeChannelMessage } from '../../src/bus/redis-codec.js';
import { newId } from '../../src/protocol/ids.js';
import type { BusMessage } from '../../src/bus/bus.js';
import { testRedisUrl, randomPrefix, redisClient, waitFor } from './redis-helpers.js';

/** A MessagePack channel record `[origin, nil, {type:'event', channel, data}]` whose data is `depth` arrays deep, built by hand. */
function deepRecord(channel: string, depth: number): Buffer {
  const head = Buffer.from([0x93, 0xa1, 0x78, 0xc0, 0x83, 0xa4, ...Buffer.from('type'), 0xa5, ...Buffer.from('event'), 0xa7, ...Buffer.from('channel'), 0xa0 + channel.length, ...Buffer.from(channel), 0xa4, ...Buffer.from('data')]);
  return Buffer.concat([head, Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]);
}

describe('the Redis bus drops and counts what it cannot handle', () => {
  test('the codec: a record nested 100,000 deep is malformed, read without exhausting the stack', () => {
    assert.doesNotThrow(() => decodeChannelMessage(deepRecord('c', 100_000), 'me'));
    assert.equal(decodeChannelMessage(deepRecord('c', 100_000), 'me'), 'malformed');
    const ok = decodeChannelMessage(deepRecord('c', 64), 'me');
    assert.ok(typeof ok === 'object', 'data 64 deep is a record');
  });

  test('undecodable records and a message a handler cannot deliver are dropped and counted; the next one is delivered', async () => {
    const url = testRedisUrl();
    const prefix = randomPrefix();
    const redis = await redisClient(url);
    const bus = new RedisBus({ url, prefix, nodeId: newId(), logger: pino({ level: 'silent' }) });
    try {
      await bus.start();
      bus.setLocalCount('c', 1);
      await bus.whenSubscribed('c');
      const got: BusMessage[] = [];
      bus.onMessage((m) => {
        if (m.frame.type === 'event' && m.frame.data === 'boom') throw new RangeError('Maximum call stack size exceeded');
        got.push(m);
      });
      const key = new RedisKeys(prefix).channel('c');
      const record = (data: unknown): Buffer =>
        encodeChannelMessage('other-node', { channel: 'c', frame: { type: 'event', channel: 'c', data, from: null, id: newId() }, exclude: null });
      await redis.publish(key, Buffer.from([0xc1]));
      await redis.publish(key, deepRecord('c', 100_000));
      await redis.publish(key, record('boom'));
      await redis.publish(key, record('after'));
      await waitFor('the record after the bad ones', () => got.length === 1);
      assert.equal((got[0]!.frame as { data: unknown }).data, 'after');
      assert.equal(bus.stats.malformed, 2);
      assert.equal(bus.stats.undeliverable, 1);
    } finally {
      await bus.close();
      redis.disconnect();
    }
  });
});
