/**
 * Fuzzing both decoders: random bytes and mutated valid frames (bit flips, truncation,
 * duplication, deletion, insertion, marker bytes, type swaps, splices). Whatever the input,
 * a decoder returns a frame or a failure (string channel, non-empty known reasons), never
 * throws, pollutes no prototype, and whatever it accepts both encoders can send.
 * ZENCONN_FUZZ_SEED reproduces a run; ZENCONN_FUZZ_SCALE multiplies the iterations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { encodeBinaryClientFrame as encodeBin } from '../../src/protocol/client-codec.js';
import { unpackValue } from '../../src/protocol/msgpack-reader.js';
import { jsonCodec, encodeClientFrame as encodeJson } from '../../src/protocol/json-codec.js';
import type { Codec } from '../../src/protocol/codec.js';
import { isDecodeFailure } from '../../src/protocol/codec.js';
import type { ClientFrame } from '../../src/protocol/frames.js';
import { expectBroadcast, CLIENT_FRAMES, SERVER_FRAMES, assertWellFormed, eventFrom } from './helpers.js';

const SEED = Number(process.env.ZENCONN_FUZZ_SEED ?? (Date.now() % 0xffffffff)) >>> 0 || 1;
const SCALE = Number(process.env.ZENCONN_FUZZ_SCALE ?? 1);

/** xorshift32: fast and reproducible from the seed. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const int = (n: number): number => next() % n;
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  return { next, int, pick, chance: (p: number) => next() / 0x100000000 < p };
}
type Rng = ReturnType<typeof rng>;

const KEYS = ['a', 'text', 'user', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', 'é', '0', 'type', 'channel', 'data'];
const STRINGS = ['', 'hello', 'news', '*', 'private.ops', '\u0000', '\ud83d\ude00', 'é', '"\\', 'a'.repeat(40), 'x'.repeat(300), '__proto__'];
const NUMBERS = [0, 1, -1, 127, 128, 255, 256, -33, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, -(2 ** 63), 1.5, 0.1, 1e300, -1e-300, 43250.5, 1732694400000];

/** A random data value; `binary` allows Uint8Array leaves. */
function randomValue(r: Rng, depth: number, binary: boolean): unknown {
  const k = r.int(depth > 4 ? 6 : 9);
  switch (k) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick(NUMBERS) * (r.chance(0.5) ? 1 : -1) || 0;
    case 3: return r.int(1 << r.int(31));
    case 4: return r.pick(STRINGS);
    case 5: return binary ? Uint8Array.from({ length: r.int(20) }, () => r.int(256)) : r.pick(STRINGS);
    case 6: case 7: return Array.from({ length: r.int(5) }, () => randomValue(r, depth + 1, binary));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(5); i > 0; i--) Object.defineProperty(o, r.pick(KEYS), { value: randomValue(r, depth + 1, binary), enumerable: true, writable: true, configurable: true });
      return o;
    }
  }
}

const plainPackr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const extPackr = new Packr({ useRecords: true, moreTypes: true, structuredClone: true, useBigIntExtension: true });

function binCorpus(r: Rng): Buffer[] {
  const out: Buffer[] = CLIENT_FRAMES.map((f) => encodeBin(f));
  for (const f of SERVER_FRAMES) out.push(binaryCodec.encode(f));
  for (let i = 0; i < 40; i++) out.push(encodeBin({ type: 'broadcast', channel: 'c.' + i, data: randomValue(r, 0, true) }));
  out.push(plainPackr.pack([6, 'news', { at: new Date(1732694400123) }, 'extra']));
  out.push(extPackr.pack([6, 'news', [{ a: 1, b: [1n << 70n, new Set([1])] }, { a: 2, b: /x/ }, new Float64Array([1])]]));
  out.push(plainPackr.pack([1, 'private.ops', 'a'.repeat(64)]));
  return out;
}

function jsonCorpus(r: Rng): Buffer[] {
  const out: Buffer[] = CLIENT_FRAMES.map((f) => Buffer.from(encodeJson(f)));
  for (const f of SERVER_FRAMES) out.push(jsonCodec.encode(f));
  for (let i = 0; i < 40; i++) out.push(Buffer.from(encodeJson({ type: 'broadcast', channel: 'c.' + i, data: randomValue(r, 0, false) })));
  out.push(Buffer.from('{"type":"subscribe","channel":"private.ops","token":"00ff","__proto__":{"type":"broadcast"}}'));
  out.push(Buffer.from('{"type":"broadcast","channel":"n","data":[1e999,-0,123456789012345678901234567890,"\\ud800"]}'));
  return out;
}

const BIN_MARKERS = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xff, 0xe0, ...Array.from({ length: 32 }, (_, i) => 0xc0 + i)];
const JSON_MARKERS = [...'{}[]",:\\0-+.eEntfu \t'].map((c) => c.charCodeAt(0)).concat([0xff, 0xc3, 0xe2, 0x00]);

/** A different-typed node somewhere in a decoded frame (structural mutation). */
function swapType(r: Rng, v: unknown, binary: boolean, depth = 0): unknown {
  if (depth > 0 && r.chance(0.3)) return randomValue(r, 3, binary);
  if (Array.isArray(v) && v.length > 0) {
    const c = v.slice();
    const i = r.int(c.length);
    c[i] = swapType(r, c[i], binary, depth + 1);
    return c;
  }
  if (v && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Date)) {
    const keys = Object.keys(v);
    if (keys.length > 0) {
      const c: Record<string, unknown> = {};
      for (const k of keys) Object.defineProperty(c, k, { value: (v as Record<string, unknown>)[k], enumerable: true, writable: true, configurable: true });
      const k = r.pick(keys);
      Object.defineProperty(c, k, { value: swapType(r, c[k], binary, depth + 1), enumerable: true, writable: true, configurable: true });
      return c;
    }
  }
  return randomValue(r, 3, binary);
}

function mutate(r: Rng, input: Buffer, corpus: Buffer[], binary: boolean): Buffer {
  let b: Buffer = Buffer.from(input);
  for (let round = 1 + r.int(3); round > 0; round--) {
    const n = b.length;
    switch (r.int(8)) {
      case 0: // bit flips
        for (let i = 1 + r.int(4); i > 0 && n > 0; i--) b[r.int(n)]! ^= 1 << r.int(8);
        break;
      case 1: // truncation
        b = b.subarray(0, r.int(n + 1));
        break;
      case 2: { // duplicate a slice in place
        if (n === 0) break;
        const s = r.int(n), e = s + 1 + r.int(Math.min(32, n - s)), at = r.int(n + 1);
        b = Buffer.concat([b.subarray(0, at), b.subarray(s, e), b.subarray(at)]);
        break;
      }
      case 3: { // delete a slice
        const s = r.int(n + 1), e = Math.min(n, s + 1 + r.int(8));
        b = Buffer.concat([b.subarray(0, s), b.subarray(e)]);
        break;
      }
      case 4: { // insert random bytes
        const at = r.int(n + 1);
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + r.int(4) }, () => r.int(256))), b.subarray(at)]);
        break;
      }
      case 5: // a marker byte where a value starts
        if (n > 0) b[r.int(n)] = r.pick(binary ? BIN_MARKERS : JSON_MARKERS);
        break;
      case 6: { // type swap
        if (binary) {
          const v = unpackValue(b, 200);
          if (v.ok) b = plainPackr.pack(swapType(r, v.value, true));
        } else {
          try {
            b = Buffer.from(JSON.stringify(swapType(r, JSON.parse(b.toString()), false)));
          } catch { /* not JSON any more: keep the bytes */ }
        }
        break;
      }
      default: { // splice with another corpus entry
        const other = r.pick(corpus);
        b = Buffer.concat([b.subarray(0, r.int(n + 1)), other.subarray(r.int(other.length + 1))]);
      }
    }
  }
  return b;
}

/** Decodes and checks every invariant; counts what happened. */
function check(codec: Codec, input: Buffer, isBinary: boolean, stats: { ok: number; failed: number }): void {
  let result: ClientFrame | ReturnType<Codec['decode']>;
  try {
    result = codec.decode(input, isBinary);
  } catch (e) {
    assert.fail(`${codec.name} decode threw ${String(e)} on ${input.toString('hex').slice(0, 400)}`);
  }
  assertWellFormed(result, input);
  if (isDecodeFailure(result)) {
    stats.failed++;
    return;
  }
  stats.ok++;
  if (result.type === 'broadcast') {
    // Whatever a decoder accepts, both encoders can send.
    const ev = eventFrom(result);
    JSON.parse(jsonCodec.encode(ev).toString('utf8'));
    binaryCodec.encode(ev);
  }
}

const protoBefore = {
  object: Object.getOwnPropertyNames(Object.prototype).join(),
  array: Object.getOwnPropertyNames(Array.prototype).join(),
  fn: Object.getOwnPropertyNames(Function.prototype).join()
};

for (const [label, codec, binary, makeCorpus] of [
  ['binary', binaryCodec, true, binCorpus],
  ['JSON', jsonCodec, false, jsonCorpus]
] as const) {
  test(`${label} decoder survives random bytes and mutated frames`, (t) => {
    const r = rng(SEED + (binary ? 0 : 1));
    const corpus = makeCorpus(r);
    const stats = { ok: 0, failed: 0 };
    const randomCount = Math.round(50_000 * SCALE);
    const mutatedCount = Math.round(110_000 * SCALE);
    const started = performance.now();
    for (let i = 0; i < randomCount; i++) {
      const input = Buffer.from(Array.from({ length: r.int(48) }, () => r.int(256)));
      check(codec, input, r.chance(0.9) === binary ? true : false, stats);
    }
    for (let i = 0; i < mutatedCount; i++) {
      check(codec, mutate(r, r.pick(corpus), corpus, binary), binary || r.chance(0.1), stats);
    }
    const ms = performance.now() - started;
    t.diagnostic(`seed ${SEED}: ${randomCount + mutatedCount} inputs in ${ms.toFixed(0)} ms, ${stats.ok} accepted, ${stats.failed} rejected`);
    assert.ok(stats.ok > 100, 'mutations should still produce some valid frames');
    assert.ok(stats.failed > 1000);
  });
}

test('random data values survive a round trip through each protocol', () => {
  const r = rng(SEED + 2);
  for (let i = 0; i < 5000; i++) {
    const binData = randomValue(r, 0, true);
    const b = expectBroadcast(binaryCodec.decode(encodeBin({ type: 'broadcast', channel: 'n', data: binData }), true));
    assert.deepEqual(b.data, binData);
    const jsonData = randomValue(r, 0, false);
    const j = expectBroadcast(jsonCodec.decode(Buffer.from(encodeJson({ type: 'broadcast', channel: 'n', data: jsonData })), false));
    assert.deepEqual(j.data, jsonData);
  }
});

test('no prototype was polluted by the fuzzing', () => {
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getOwnPropertyNames(Object.prototype).join(), protoBefore.object);
  assert.equal(Object.getOwnPropertyNames(Array.prototype).join(), protoBefore.array);
  assert.equal(Object.getOwnPropertyNames(Function.prototype).join(), protoBefore.fn);
});
