import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'msgpackr';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { decodeChannelMessage, decodeControl, encodeBye, encodeChannelMessage, encodeDelta, encodeRewrite } from '../../src/bus/redis-codec.js';

describe('the Redis bus records', () => {
  test('a channel message comes back as sent, with its binary hint recomputed', () => {
    const at = new Date(1732694400000);
    const frame: ServerFrame = { type: 'event', channel: 'room', data: { bin: new Uint8Array([1, 2]), at, n: NaN }, from: 's1', id: 'e1', hasBinary: false };
    const r = decodeChannelMessage(encodeChannelMessage('node-a', { channel: 'room', frame, exclude: 's1' }), 'node-b');
    assert.ok(typeof r === 'object');
    assert.equal(r.exclude, 's1');
    assert.deepEqual(r.frame, { ...frame, hasBinary: true });
  });

  test('an event without data travels as null; a __proto__ key stays a plain key', () => {
    const frame = { type: 'event', channel: 'c', data: undefined, from: null, id: 'e' } as ServerFrame;
    const r = decodeChannelMessage(encodeChannelMessage('a', { channel: 'c', frame, exclude: null }), 'b');
    assert.ok(typeof r === 'object');
    assert.equal((r.frame as { data: unknown }).data, null);
    const proto = JSON.parse('{"__proto__":{"x":1}}') as unknown;
    const p = decodeChannelMessage(encodeChannelMessage('a', { channel: 'c', frame: { type: 'event', channel: 'c', data: proto, from: null, id: 'e' }, exclude: null }), 'b');
    assert.ok(typeof p === 'object');
    const data = (p.frame as { data: object }).data;
    assert.deepEqual(Object.keys(data), ['__proto__']);
    assert.equal(Object.getPrototypeOf(data), Object.prototype);
  });

  test('own messages are told apart; anything else that is not a record is malformed', () => {
    const frame: ServerFrame = { type: 'left', channel: 'private.p', data: { session: 's', user: null } };
    assert.equal(decodeChannelMessage(encodeChannelMessage('me', { channel: 'private.p', frame, exclude: null }), 'me'), 'own');
    for (const bad of [Buffer.from([0xc1]), pack(['a', null]), pack(['a', 7, frame]), pack(['a', null, { type: 'event' }]), pack(['a', null, null])]) {
      assert.equal(decodeChannelMessage(bad, 'me'), 'malformed', bad.toString('hex'));
    }
  });

  test('control notices: delta, rewrite, goodbye; own, unknown and malformed ones', () => {
    assert.deepEqual(decodeControl(encodeDelta('n', 3, ['c:x', '2', 'm:p s', null]), 'me'), { kind: 'd', node: 'n', seq: 3, fields: ['c:x', '2', 'm:p s', null] });
    assert.deepEqual(decodeControl(encodeRewrite('n', 4), 'me'), { kind: 's', node: 'n', seq: 4 });
    assert.deepEqual(decodeControl(encodeBye('n'), 'me'), { kind: 'b', node: 'n' });
    assert.equal(decodeControl(encodeRewrite('me', 1), 'me'), 'own');
    assert.equal(decodeControl(pack(['z', 'n', 1]), 'me'), null, 'a kind of a later version is ignored');
    for (const bad of [pack(['d', 'n']), pack(['d', 'n', '1']), pack([1, 'n', 1]), pack('d'), Buffer.from([0x92])]) {
      assert.equal(decodeControl(bad, 'me'), 'malformed', bad.toString('hex'));
    }
  });
});
