import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonCodec, encodeClientFrame, decodeServerFrame, binaryToBase64, containsBinary } from '../../src/protocol/json-codec.js';
import { MAX_DATA_DEPTH, type ClientFrame } from '../../src/protocol/frames.js';
import { expectBroadcast, CLIENT_FRAMES, EVENT_ID, SERVER_FRAMES, SESSION, assertFailure, nest, withoutHint } from './helpers.js';

const dec = (text: string, isBinary = false) => jsonCodec.decode(Buffer.from(text), isBinary);
const encText = (f: Parameters<typeof jsonCodec.encode>[0]) => jsonCodec.encode(f).toString('utf8');

test('every server frame round-trips through the JSON codec', () => {
  for (const f of SERVER_FRAMES) assert.deepEqual(decodeServerFrame(jsonCodec.encode(f)), withoutHint(f), f.type);
});

test('every client frame round-trips through the JSON codec', () => {
  for (const f of CLIENT_FRAMES) {
    const text = encodeClientFrame(f);
    assert.equal(typeof text, 'string');
    assert.deepEqual(dec(text), f, text);
  }
});

test('server frames keep the documented field names and order', () => {
  assert.equal(encText({ type: 'accepted', data: SESSION }), `{"type":"accepted","data":"${SESSION}"}`);
  assert.equal(encText({ type: 'subscribed', channel: 'news' }), '{"type":"subscribed","channel":"news"}');
  assert.equal(encText({ type: 'unauthorized', channel: 'private.x' }), '{"type":"unauthorized","channel":"private.x"}');
  assert.equal(encText({ type: 'unsubscribed', channel: 'news' }), '{"type":"unsubscribed","channel":"news"}');
  assert.equal(encText({ type: 'received', channel: 'news', count: 2 }), '{"type":"received","channel":"news","count":2}');
  assert.equal(
    encText({ type: 'event', channel: 'news', data: { a: 1 }, from: SESSION, id: EVENT_ID }),
    `{"type":"event","channel":"news","data":{"a":1},"from":"${SESSION}","id":"${EVENT_ID}"}`
  );
  assert.equal(
    encText({ type: 'event', channel: 'news', data: null, from: null, id: EVENT_ID }),
    `{"type":"event","channel":"news","data":null,"from":null,"id":"${EVENT_ID}"}`
  );
  assert.equal(
    encText({ type: 'joined', channel: 'news', data: { session: SESSION, user: 'alice' } }),
    `{"type":"joined","channel":"news","data":{"session":"${SESSION}","user":"alice"}}`
  );
  assert.equal(
    encText({ type: 'left', channel: 'news', data: { session: SESSION, user: null } }),
    `{"type":"left","channel":"news","data":{"session":"${SESSION}","user":null}}`
  );
  assert.equal(encText({ type: 'error', channel: '*', errors: ['invalid json'] }), '{"type":"error","channel":"*","errors":["invalid json"]}');
});

test('every encoded server frame is valid JSON, whatever the strings hold', () => {
  const nasty = 'q"uo\\te\n\u2028\ud800 ';
  const text = encText({ type: 'event', channel: nasty, data: { [nasty]: nasty }, from: null, id: EVENT_ID });
  assert.deepEqual(JSON.parse(text).data, { [nasty]: nasty });
  assert.equal(JSON.parse(encText({ type: 'error', channel: nasty, errors: [nasty] })).channel, nasty);
});

test('undefined event data is sent as null', () => {
  assert.equal(JSON.parse(encText({ type: 'event', channel: 'n', data: undefined, from: null, id: EVENT_ID })).data, null);
});

test('decode reports each error with the frame channel and the exact reason', () => {
  const cases: Array<[string, string, string[]]> = [
    ['', '*', ['invalid json']],
    ['not json', '*', ['invalid json']],
    ['{"type":"subscribe","channel":"news"', '*', ['invalid json']],
    ['{"type":"subscribe","channel":"news"} x', '*', ['invalid json']],
    ['[1,2]', '*', ['invalid frame']],
    ['"subscribe"', '*', ['invalid frame']],
    ['null', '*', ['invalid frame']],
    ['42', '*', ['invalid frame']],
    ['{"channel":"news"}', 'news', ['unknown message type']],
    ['{"type":"publish","channel":"news"}', 'news', ['unknown message type']],
    ['{"type":"event","channel":"news","data":1}', 'news', ['unknown message type']],
    ['{"type":"Subscribe","channel":"news"}', 'news', ['unknown message type']],
    ['{"type":1,"channel":"news"}', 'news', ['unknown message type']],
    ['{"type":"__proto__","channel":"news"}', 'news', ['unknown message type']],
    ['{"type":"toString","channel":"news"}', 'news', ['unknown message type']],
    ['{"type":"subscribe"}', '*', ['missing channel']],
    ['{"type":"unsubscribe"}', '*', ['missing channel']],
    ['{"type":"broadcast","data":1}', '*', ['missing channel']],
    ['{"type":"subscribe","channel":""}', '', ['invalid channel']],
    ['{"type":"subscribe","channel":"bad channel!"}', 'bad channel!', ['invalid channel']],
    ['{"type":"subscribe","channel":"caf\u00e9"}', 'caf\u00e9', ['invalid channel']],
    ['{"type":"subscribe","channel":42}', '*', ['invalid channel']],
    ['{"type":"subscribe","channel":null}', '*', ['invalid channel']],
    ['{"type":"subscribe","channel":["news"]}', '*', ['invalid channel']],
    ['{"type":"subscribe","channel":"*"}', '*', ['invalid channel']],
    ['{"type":"unsubscribe","channel":"*"}', '*', ['invalid channel']],
    ['{"type":"subscribe","channel":"news","token":42}', 'news', ['invalid token']],
    ['{"type":"subscribe","channel":"private.x","token":{"sig":"ab"}}', 'private.x', ['invalid token']],
    ['{"type":"subscribe","channel":"bad!","token":false}', 'bad!', ['invalid channel', 'invalid token']],
    ['{"type":"broadcast","channel":"news"}', 'news', ['missing data']],
    ['{"type":"broadcast","channel":"bad!"}', 'bad!', ['invalid channel', 'missing data']],
    ['{"type":"broadcast"}', '*', ['missing channel', 'missing data']]
  ];
  for (const [text, channel, errors] of cases) assertFailure(dec(text), channel, errors, text);
});

test('an over-long channel is reported cut to 200 characters', () => {
  const long = 'a'.repeat(201);
  assertFailure(dec(JSON.stringify({ type: 'subscribe', channel: long })), 'a'.repeat(200), ['invalid channel']);
  const longBad = '!'.repeat(5000);
  assertFailure(dec(JSON.stringify({ type: 'broadcast', channel: longBad })), '!'.repeat(200), ['invalid channel', 'missing data']);
  assert.deepEqual(dec(JSON.stringify({ type: 'subscribe', channel: 'a'.repeat(200) })), { type: 'subscribe', channel: 'a'.repeat(200) });
});

test('null data is data; null token is no token', () => {
  assert.deepEqual(dec('{"type":"broadcast","channel":"news","data":null}'), { type: 'broadcast', channel: 'news', data: null, hasBinary: false });
  assert.deepEqual(dec('{"type":"subscribe","channel":"news","token":null}'), { type: 'subscribe', channel: 'news' });
  assert.deepEqual(dec('{"type":"subscribe","channel":"private.a","token":""}'), { type: 'subscribe', channel: 'private.a', token: '' });
});

test('unknown fields are ignored', () => {
  assert.deepEqual(dec('{"id":7,"type":"unsubscribe","channel":"news","data":{"x":1},"token":5,"v":2}'), { type: 'unsubscribe', channel: 'news' });
  assert.deepEqual(dec('{"type":"broadcast","channel":"news","data":1,"token":[],"extra":{"deep":[[[]]]}}'), {
    type: 'broadcast', channel: 'news', data: 1, hasBinary: false
  });
});

test('a binary frame on a JSON session is parsed as UTF-8 JSON', () => {
  assert.deepEqual(dec('{"type":"subscribe","channel":"news"}', true), { type: 'subscribe', channel: 'news' });
  const invalidUtf8 = Buffer.concat([Buffer.from('{"type":"broadcast","channel":"news","data":"'), Buffer.from([0xff, 0xc3]), Buffer.from('"}')]);
  assert.deepEqual(jsonCodec.decode(invalidUtf8, true), { type: 'broadcast', channel: 'news', data: '\ufffd\ufffd', hasBinary: false });
  assertFailure(jsonCodec.decode(Buffer.from([0x92, 0x01, 0xa4]), true), '*', ['invalid json']);
});

test(`data nested ${MAX_DATA_DEPTH} deep is accepted, deeper is "data too deep"`, () => {
  const ok = dec(JSON.stringify({ type: 'broadcast', channel: 'news', data: nest(MAX_DATA_DEPTH) }));
  assert.equal((ok as ClientFrame).type, 'broadcast');
  assertFailure(dec(JSON.stringify({ type: 'broadcast', channel: 'news', data: nest(MAX_DATA_DEPTH + 1) })), 'news', ['data too deep']);
  const objects = '{"a":'.repeat(MAX_DATA_DEPTH + 1) + '1' + '}'.repeat(MAX_DATA_DEPTH + 1);
  assertFailure(dec(`{"type":"broadcast","channel":"news","data":${objects}}`), 'news', ['data too deep']);
  // A bracket bomb is rejected, not a stack overflow later in an encoder.
  assertFailure(dec(`{"channel":"c","type":"broadcast","data":${'['.repeat(60000)}${']'.repeat(60000)}}`), 'c', ['data too deep']);
});

test('brackets inside strings do not count as nesting', () => {
  const data = { s: '['.repeat(500) + '\\"[{'.repeat(100), t: '"]]]' };
  assert.deepEqual(dec(JSON.stringify({ type: 'broadcast', channel: 'news', data })), { type: 'broadcast', channel: 'news', data, hasBinary: false });
});

test('huge and odd numbers decode without throwing and re-encode as valid JSON', () => {
  const r = expectBroadcast(dec('{"type":"broadcast","channel":"n","data":[1e999,-1e999,123456789012345678901234567890,-0,5e-324]}'));
  const out = JSON.parse(encText({ type: 'event', channel: 'n', data: r.data, from: null, id: EVENT_ID }));
  assert.deepEqual(out.data, [null, null, 1.2345678901234568e29, 0, 5e-324]);
});

test('__proto__ in JSON data stays an own property and pollutes nothing', () => {
  const r = expectBroadcast(dec('{"type":"broadcast","channel":"n","data":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}},"__proto__":{"polluted":true}}'));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(r.data), Object.prototype);
  assert.deepEqual(Object.keys(r.data as object), ['__proto__', 'constructor']);
  const text = encText({ type: 'event', channel: 'n', data: r.data, from: null, id: EVENT_ID });
  assert.match(text, /"data":\{"__proto__":\{"polluted":true\}/);
});

test('binary values in event data become standard base64 strings', () => {
  const data = { img: Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x01]), list: [new Uint8Array([1, 2, 3]), 'x', { b: new Uint8Array(0) }], n: 1 };
  const out = JSON.parse(encText({ type: 'event', channel: 'n', data, from: null, id: EVENT_ID, hasBinary: true }));
  assert.deepEqual(out.data, { img: '3q2+7wE=', list: ['AQID', 'x', { b: '' }], n: 1 });
  // No hint: walked too.
  assert.deepEqual(JSON.parse(encText({ type: 'event', channel: 'n', data, from: null, id: EVENT_ID })).data, out.data);
  // Top-level binary, a view into a larger buffer, other views.
  const big = Buffer.from('xxhello worldxx');
  assert.equal(JSON.parse(encText({ type: 'event', channel: 'n', data: big.subarray(2, 13), from: null, id: EVENT_ID })).data, 'aGVsbG8gd29ybGQ=');
  assert.equal(JSON.parse(encText({ type: 'event', channel: 'n', data: new Uint16Array([1]), from: null, id: EVENT_ID })).data, 'AQA=');
  assert.equal(JSON.parse(encText({ type: 'event', channel: 'n', data: new Uint8Array([255]).buffer, from: null, id: EVENT_ID })).data, '/w==');
});

test('hasBinary: false skips the walk (the server vouches there is no binary)', () => {
  const data = { b: new Uint8Array([1]) };
  const out = JSON.parse(encText({ type: 'event', channel: 'n', data, from: null, id: EVENT_ID, hasBinary: false }));
  assert.notEqual(out.data.b, 'AQ==');
});

test('binaryToBase64 copies only what changes and never mutates its input', () => {
  const plain = { a: [1, { b: 'c' }], d: new Date(0) };
  assert.equal(binaryToBase64(plain), plain);
  const inner = { keep: { x: 1 } };
  const withBin = { bin: new Uint8Array([1]), inner, arr: [inner, new Uint8Array([2])] };
  const out = binaryToBase64(withBin) as Record<string, unknown>;
  assert.ok(withBin.bin instanceof Uint8Array);
  assert.ok(withBin.arr[1] instanceof Uint8Array);
  assert.equal(out.inner, inner);
  assert.equal((out.arr as unknown[])[0], inner);
  const proto = JSON.parse('{"__proto__":{"x":1},"b":null}');
  proto.b = new Uint8Array([1]);
  const p = binaryToBase64(proto) as Record<string, unknown>;
  assert.deepEqual(Object.keys(p), ['__proto__', 'b']);
  assert.equal(Object.getPrototypeOf(p), Object.prototype);
  assert.equal(p.b, 'AQ==');
});

test('BigInt values in walked data become numbers instead of throwing', () => {
  const text = encText({ type: 'event', channel: 'n', data: { ts: 1732694400000n, big: 2n ** 64n }, from: null, id: EVENT_ID });
  assert.deepEqual(JSON.parse(text).data, { ts: 1732694400000, big: 2 ** 64 });
});

test('containsBinary finds binary values at any depth', () => {
  assert.equal(containsBinary({ a: [1, 'x', { b: null }] }), false);
  assert.equal(containsBinary(new Date()), false);
  assert.equal(containsBinary({ a: [1, 'x', { b: new Uint8Array(1) }] }), true);
  assert.equal(containsBinary(Buffer.alloc(0)), true);
});

test('decodeServerFrame rejects malformed server frames with a TypeError', () => {
  for (const bad of ['[]', '{"type":"nope"}', '{"type":"accepted"}', '{"type":"received","channel":"n","count":"1"}',
    '{"type":"event","channel":"n","from":null,"id":"x"}', '{"type":"joined","channel":"n","data":null}',
    '{"type":"error","channel":"n","errors":[1]}']) {
    assert.throws(() => decodeServerFrame(bad), TypeError, bad);
  }
  assert.throws(() => decodeServerFrame('nope'), SyntaxError);
});
