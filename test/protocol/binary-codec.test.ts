import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr, pack } from 'msgpackr';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { decodeBinaryServerFrame as decodeServerFrame, encodeBinaryClientFrame as encodeClientFrame } from '../../src/protocol/client-codec.js';
import { unpackValue } from '../../src/protocol/msgpack-reader.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { Kind, MAX_DATA_DEPTH, type ClientFrame } from '../../src/protocol/frames.js';
import { idToBytes } from '../../src/protocol/ids.js';
import { expectBroadcast, CLIENT_FRAMES, EVENT_ID, OTHER, SERVER_FRAMES, SESSION, assertFailure, eventFrom, nest, withoutHint } from './helpers.js';

const plain = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const dec = (v: unknown) => binaryCodec.decode(plain.pack(v), true);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');

test('every server frame round-trips through the binary codec', () => {
  for (const f of SERVER_FRAMES) assert.deepEqual(decodeServerFrame(binaryCodec.encode(f)), withoutHint(f), f.type);
});

test('every client frame round-trips through the binary codec', () => {
  for (const f of CLIENT_FRAMES) {
    const b = encodeClientFrame(f);
    assert.ok(Buffer.isBuffer(b));
    assert.deepEqual(binaryCodec.decode(b, true), f, hex(b));
  }
});

test('server frames have the documented array layout', () => {
  const sid = idToBytes(SESSION);
  const oid = idToBytes(OTHER);
  const eid = idToBytes(EVENT_ID);
  const u = (f: Parameters<typeof binaryCodec.encode>[0]) => plain.unpack(binaryCodec.encode(f));
  assert.deepEqual(u({ type: 'accepted', data: SESSION }), [0, sid]);
  assert.deepEqual(u({ type: 'subscribed', channel: 'news' }), [2, 'news']);
  assert.deepEqual(u({ type: 'unauthorized', channel: 'news' }), [3, 'news']);
  assert.deepEqual(u({ type: 'unsubscribed', channel: 'news' }), [5, 'news']);
  assert.deepEqual(u({ type: 'received', channel: 'news', count: 4 }), [7, 'news', 4]);
  assert.deepEqual(u({ type: 'event', channel: 'news', data: { a: 1 }, from: OTHER, id: EVENT_ID }), [8, 'news', { a: 1 }, oid, eid]);
  assert.deepEqual(u({ type: 'event', channel: 'news', data: 'x', from: null, id: EVENT_ID }), [8, 'news', 'x', null, eid]);
  assert.deepEqual(u({ type: 'joined', channel: 'news', data: { session: OTHER, user: 'bob' } }), [9, 'news', oid, 'bob']);
  assert.deepEqual(u({ type: 'left', channel: 'news', data: { session: OTHER, user: null } }), [10, 'news', oid, null]);
  assert.deepEqual(u({ type: 'error', channel: '*', errors: ['invalid frame'] }), [11, '*', ['invalid frame']]);
});

test('client frames have the documented array layout', () => {
  assert.equal(hex(encodeClientFrame({ type: 'subscribe', channel: 'news' })), '9201a46e657773');
  assert.equal(hex(encodeClientFrame({ type: 'subscribe', channel: 'news', token: 'ab' })), '9301a46e657773a26162');
  assert.equal(hex(encodeClientFrame({ type: 'unsubscribe', channel: 'news' })), '9204a46e657773');
  assert.equal(hex(encodeClientFrame({ type: 'broadcast', channel: 'news', data: { a: 1 } })), '9306a46e65777381a16101');
});

test('the encoder sends plain MessagePack: fixmaps, nil for undefined, no msgpackr extensions', () => {
  const b = binaryCodec.encode({ type: 'event', channel: 'c', data: { u: undefined, d: new Date(0), f: 0.1, s: new Set([1]) }, from: null, id: EVENT_ID });
  const h = hex(b);
  assert.ok(h.startsWith('9508a16384a175c0a164d6ff00000000a166cb3fb999999999999a'), h);
  assert.ok(h.includes('a17391' + '01'), h); // Set → array
});

test('a text frame on a binary session is "expected a binary frame"', () => {
  assertFailure(binaryCodec.decode(Buffer.from('{"type":"subscribe","channel":"news"}'), false), '*', ['expected a binary frame']);
  assertFailure(binaryCodec.decode(encodeClientFrame({ type: 'subscribe', channel: 'news' }), false), '*', ['expected a binary frame']);
});

test('decode reports each error with the frame channel and the exact reason', () => {
  const cases: Array<[unknown, string, string[]]> = [
    [{ type: 'subscribe', channel: 'news' }, '*', ['invalid frame']],
    ['news', '*', ['invalid frame']],
    [1, '*', ['invalid frame']],
    [null, '*', ['invalid frame']],
    [[], '*', ['unknown message type']],
    [[99, 'news'], 'news', ['unknown message type']],
    [[-1, 'news'], 'news', ['unknown message type']],
    [[1.5, 'news'], 'news', ['unknown message type']],
    [['subscribe', 'news'], 'news', ['unknown message type']],
    [[null, 'news'], 'news', ['unknown message type']],
    [[Kind.subscribed, 'news'], 'news', ['unknown message type']],
    [[Kind.event, 'news', 1, null, null], 'news', ['unknown message type']],
    [[Kind.error, 'news', []], 'news', ['unknown message type']],
    [[1], '*', ['missing channel']],
    [[4], '*', ['missing channel']],
    [[6], '*', ['missing channel', 'missing data']],
    [[1, ''], '', ['invalid channel']],
    [[1, 'bad channel!'], 'bad channel!', ['invalid channel']],
    [[1, 42], '*', ['invalid channel']],
    [[1, null], '*', ['invalid channel']],
    [[1, Buffer.from('news')], '*', ['invalid channel']],
    [[1, '*'], '*', ['invalid channel']],
    [[4, '*'], '*', ['invalid channel']],
    [[1, 'a'.repeat(201)], 'a'.repeat(200), ['invalid channel']],
    [[1, 'news', 42], 'news', ['invalid token']],
    [[1, 'news', Buffer.from('ab')], 'news', ['invalid token']],
    [[1, 'bad!', true], 'bad!', ['invalid channel', 'invalid token']],
    [[6, 'news'], 'news', ['missing data']],
    [[6, 'bad!'], 'bad!', ['invalid channel', 'missing data']]
  ];
  for (const [v, channel, errors] of cases) assertFailure(dec(v), channel, errors, JSON.stringify(v));
});

test('malformed MessagePack is "invalid msgpack", with the channel when it was read', () => {
  const cases: Array<[string, string]> = [
    ['', '*'],
    ['c1', '*'],
    ['92', '*'], // array of 2, no elements
    ['9201', '*'], // channel missing from the bytes
    ['9201a5 6e657773', '*'], // channel string cut short
    ['9306a46e657773', 'news'], // data missing from the bytes
    ['9306a46e657773 82a161', 'news'], // data map cut short
    ['9306a46e657773 c1', 'news'], // reserved byte in data
    ['9201a46e657773 00', 'news'], // a byte after the frame
    ['9201a46e657773 9201a46e657773', 'news'], // two frames in one
    ['dd ffffffff 01', '*'], // array32 claiming 4 billion elements
    ['9306a46e657773 df ffffffff', 'news'], // map32 claiming 4 billion entries
    ['9306a46e657773 db ffffffff 61', 'news'], // str32 longer than the frame
    ['9306a46e657773 c6 0000ffff 00', 'news'], // bin32 longer than the frame
    ['9306a46e657773 c7 05', 'news'], // ext8 with no bytes
    ['9306a46e657773 d7ff ffffffff 00000000', 'news'], // timestamp64 with 1073741823 ns
    ['9306a46e657773 d4ff 00', 'news'], // timestamp of 1 byte
    ['9306a46e657773 c70cff 00000000 7fffffffffffffff', 'news'] // timestamp beyond Date's range
  ];
  for (const [h, channel] of cases) assertFailure(binaryCodec.decode(bytes(h), true), channel, ['invalid msgpack'], h);
});

test('ext types other than the timestamp are "unsupported extension type"', () => {
  const msgpackrExt = new Packr({ useRecords: true, moreTypes: true, structuredClone: true, useBigIntExtension: true });
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const values: unknown[] = [new Set([1]), new Error('x'), /re/g, 123n ** 30n, new Float32Array([1]), cyclic, undefined, [{ a: 1 }, { a: 2 }]];
  for (const v of values) {
    const data = msgpackrExt.pack(v);
    const frame = Buffer.concat([bytes('9306a46e657773'), data]);
    const r = binaryCodec.decode(frame, true);
    assertFailure(r, 'news', ['unsupported extension type'], hex(data));
  }
  assertFailure(binaryCodec.decode(bytes('9306a46e657773 d40501'), true), 'news', ['unsupported extension type']);
  assertFailure(binaryCodec.decode(bytes('9306a46e657773 c8000205 0102'), true), 'news', ['unsupported extension type']);
});

test('a timestamp becomes a Date, sent on as a timestamp or an ISO string', () => {
  for (const d of [new Date(0), new Date(1732694400000), new Date(1732694400123), new Date(-1500), new Date(2 ** 34 * 1000 + 5)]) {
    const r = expectBroadcast(dec([6, 'news', { at: d }]));
    const at = (r.data as { at: Date }).at;
    assert.ok(at instanceof Date);
    assert.equal(at.getTime(), d.getTime());
    const ev = eventFrom(r);
    assert.equal((decodeServerFrame(binaryCodec.encode(ev)) as { data: { at: Date } }).data.at.getTime(), d.getTime());
    assert.equal(JSON.parse(jsonCodec.encode(ev).toString()).data.at, d.toISOString());
  }
});

test('trailing unknown elements are ignored', () => {
  assert.deepEqual(dec([1, 'news', null, null, null, 'extra', { x: [1] }]), { type: 'subscribe', channel: 'news' });
  assert.deepEqual(dec([1, 'news', null, 5, 'e1', 'extra']), { type: 'subscribe', channel: 'news', since: { offset: 5, epoch: 'e1' } });
  assert.deepEqual(dec([1, 'news', 'abc', null, null, 7]), { type: 'subscribe', channel: 'news', token: 'abc' });
  assert.deepEqual(dec([4, 'news', 'junk', 1, 2, 3]), { type: 'unsubscribe', channel: 'news' });
  assert.deepEqual(dec([6, 'news', 1, 2]), { type: 'broadcast', channel: 'news', data: 1, hasBinary: false });
  // …but they must still be well-formed.
  assertFailure(binaryCodec.decode(bytes('9401a46e657773c0 c1'), true), 'news', ['invalid msgpack']);
  const server = decodeServerFrame(plain.pack([8, 'news', 1, null, idToBytes(EVENT_ID), 'later', { field: 1 }]));
  assert.deepEqual(server, { type: 'event', channel: 'news', data: 1, from: null, id: EVENT_ID });
  assert.deepEqual(decodeServerFrame(plain.pack([2, 'news', 'extra'])), { type: 'subscribed', channel: 'news' });
});

test('binary data stays binary end to end', () => {
  const img = Buffer.from([0, 1, 2, 253, 254, 255]);
  const r = expectBroadcast(dec([6, 'news', { img, nested: [img], s: 'text' }]));
  assert.equal(r.hasBinary, true);
  const data = r.data as { img: Uint8Array; nested: Uint8Array[] };
  assert.ok(data.img instanceof Uint8Array);
  assert.deepEqual(Buffer.from(data.img), img);
  const out = decodeServerFrame(binaryCodec.encode(eventFrom(r)));
  assert.ok(out.type === 'event');
  const outData = out.data as { img: Uint8Array; nested: Uint8Array[] };
  assert.ok(outData.img instanceof Uint8Array);
  assert.deepEqual(Buffer.from(outData.img), img);
  assert.deepEqual(Buffer.from(outData.nested[0]!), img);
  // On the wire it is MessagePack bin 8.
  assert.ok(hex(binaryCodec.encode(eventFrom(r))).includes('c406000102fdfeff'));
});

test('decoded bin is a copy that does not alias the frame buffer', () => {
  const frame = plain.pack([6, 'news', Buffer.from([1, 2, 3])]);
  const r = expectBroadcast(binaryCodec.decode(frame, true));
  frame.fill(0);
  assert.deepEqual([...(r.data as Uint8Array)], [1, 2, 3]);
});

test('bin data becomes base64 for JSON sessions', () => {
  const r = expectBroadcast(dec([6, 'news', { img: Buffer.from([0xde, 0xad, 0xbe, 0xef]), list: [Buffer.from('hi')], n: 1 }]));
  const json = JSON.parse(jsonCodec.encode(eventFrom(r)).toString());
  assert.deepEqual(json.data, { img: '3q2+7w==', list: ['aGk='], n: 1 });
  const top = expectBroadcast(dec([6, 'news', Buffer.from('hello')]));
  assert.equal(JSON.parse(jsonCodec.encode(eventFrom(top)).toString()).data, 'aGVsbG8=');
});

test('JSON data reaches binary sessions as plain MessagePack', () => {
  const r = expectBroadcast(jsonCodec.decode(Buffer.from('{"type":"broadcast","channel":"c","data":{"a":[1,2.5,"x",null,true],"b":{}}}'), false));
  const out = decodeServerFrame(binaryCodec.encode(eventFrom(r)));
  assert.ok(out.type === 'event');
  assert.deepEqual(out.data, { a: [1, 2.5, 'x', null, true], b: {} });
});

test('every MessagePack scalar decodes to the expected value', () => {
  const cases: Array<[string, unknown]> = [
    ['00', 0], ['7f', 127], ['e0', -32], ['ff', -1], ['c0', null], ['c2', false], ['c3', true],
    ['cc ff', 255], ['cd ffff', 65535], ['ce ffffffff', 4294967295], ['cf 001fffffffffffff', 2 ** 53 - 1],
    ['cf ffffffffffffffff', 2 ** 64], ['d0 80', -128], ['d1 8000', -32768], ['d2 80000000', -(2 ** 31)],
    ['d3 ffffffffffffffff', -1], ['d3 8000000000000000', -(2 ** 63)], ['d3 ffe0000000000001', -(2 ** 53) + 1],
    ['ca 3fc00000', 1.5], ['cb 400921fb54442d18', Math.PI], ['cb 7ff0000000000000', Infinity],
    ['a0', ''], ['a3 616263', 'abc'], ['d9 03 616263', 'abc'], ['da 0003 616263', 'abc'], ['db 00000003 616263', 'abc'],
    ['a4 f09f9880', '😀'], ['a2 c3a9', 'é'], ['a2 ff61', '\ufffda'],
    ['90', []], ['dc 0001 01', [1]], ['dd 00000001 01', [1]], ['80', {}], ['de 0001 a161 01', { a: 1 }],
    ['df 00000001 a161 01', { a: 1 }], ['82 a161 01 a161 02', { a: 2 }],
    ['84 01 a178 c0 a16e c3 a174 cb3ff8000000000000 a166', { 1: 'x', null: 'n', true: 't', '1.5': 'f' }]
  ];
  for (const [h, v] of cases) {
    const r = unpackValue(bytes(h));
    assert.ok(r.ok, h);
    assert.deepEqual(r.value, v, h);
  }
  const nan = unpackValue(bytes('cb 7ff8000000000000'));
  assert.ok(nan.ok && Number.isNaN(nan.value));
  const b = unpackValue(bytes('c4 02 0102'));
  assert.ok(b.ok && b.hasBinary && b.value instanceof Uint8Array && b.value.length === 2);
});

test('map keys that are containers, bin or ext are "unsupported map key"', () => {
  for (const key of ['90', '80', 'c40161', 'd6ff00000000']) {
    assertFailure(binaryCodec.decode(bytes(`9306a46e657773 81${key}01`), true), 'news', ['unsupported map key'], key);
  }
});

test(`data nested ${MAX_DATA_DEPTH} deep is accepted, deeper is "data too deep"`, () => {
  const ok = dec([6, 'news', nest(MAX_DATA_DEPTH)]);
  assert.equal((ok as ClientFrame).type, 'broadcast');
  assertFailure(dec([6, 'news', nest(MAX_DATA_DEPTH + 1)]), 'news', ['data too deep']);
  // A 60000-deep bomb fails fast instead of exhausting the stack.
  const bomb = Buffer.concat([bytes('9306a46e657773'), Buffer.alloc(60000, 0x91), Buffer.from([0x01])]);
  assertFailure(binaryCodec.decode(bomb, true), 'news', ['data too deep']);
  const maps = Buffer.concat([bytes('9306a46e657773'), Buffer.alloc(2 * 60000).fill(Buffer.from([0x81, 0xa0])), Buffer.from([0x01])]);
  assertFailure(binaryCodec.decode(maps, true), 'news', ['data too deep']);
  // Deep trailing elements count too.
  assertFailure(dec([4, 'news', null, nest(MAX_DATA_DEPTH + 1)]), 'news', ['data too deep']);
});

test('__proto__ in MessagePack data stays an own property and pollutes nothing', () => {
  const frame = Buffer.concat([bytes('9306a46e657773'), bytes('82 a9 5f5f70726f746f5f5f 81 a8 706f6c6c75746564 c3 ab 636f6e7374727563746f72 81 a9 70726f746f74797065 81 a8 706f6c6c75746564 c3')]);
  const r = expectBroadcast(binaryCodec.decode(frame, true));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(r.data), Object.prototype);
  assert.deepEqual(Object.keys(r.data as object), ['__proto__', 'constructor']);
  assert.deepEqual(Object.getOwnPropertyDescriptor(r.data, '__proto__')?.value, { polluted: true });
  // Both encoders pass the key on as it came.
  assert.match(jsonCodec.encode(eventFrom(r)).toString(), /"data":\{"__proto__":\{"polluted":true\}/);
  assert.ok(hex(binaryCodec.encode(eventFrom(r))).includes('a95f5f70726f746f5f5f81a8706f6c6c75746564c3'));
});

test('decodeServerFrame rejects malformed server frames with a TypeError', () => {
  const bad = [pack({}), pack([]), pack([0, 'not an id']), pack([0, Buffer.alloc(15)]), pack([2]), pack([7, 'n', '1']),
    pack([8, 'n', 1, null]), pack([8, 'n', 1, 'x', Buffer.alloc(16)]), pack([9, 'n', Buffer.alloc(16)]), pack([11, 'n', [1]]),
    pack([12, 'n']), Buffer.from([0xc1])];
  for (const b of bad) assert.throws(() => decodeServerFrame(b), TypeError, hex(b));
});
