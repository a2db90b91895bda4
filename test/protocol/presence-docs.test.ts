/** The presence frames in docs/protocol.md are what the codecs produce. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { encodeBinaryClientFrame, decodeBinaryServerFrame } from '../../src/protocol/client-codec.js';
import { jsonCodec, encodeClientFrame as encodeJsonClientFrame } from '../../src/protocol/json-codec.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { OTHER, SESSION } from './helpers.js';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url)), 'utf8');

function dump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    lines.push(i.toString(16).padStart(4, '0') + '  ' + [...b.subarray(i, i + 16)].map((x) => x.toString(16).padStart(2, '0')).join(' '));
  }
  return lines.join('\n');
}

const answer: ServerFrame = { type: 'presence', channel: 'private.x', members: [{ session: SESSION, user: 'alice' }, { session: OTHER, user: null }], truncated: false };
const cut: ServerFrame = { type: 'presence', channel: 'private.x', members: [{ session: SESSION, user: 'alice' }], truncated: true };

test('the presence examples in the doc are what the codecs produce', () => {
  const req = { type: 'presence', channel: 'private.x' } as const;
  assert.ok(doc.includes(encodeJsonClientFrame(req)), 'JSON request');
  assert.ok(doc.includes('```\n' + dump(encodeBinaryClientFrame(req)) + '\n```'), 'binary request');
  assert.ok(doc.includes(jsonCodec.encode(answer).toString()), 'JSON answer');
  assert.ok(doc.includes(jsonCodec.encode(cut).toString()), 'JSON truncated answer');
  assert.ok(doc.includes('```\n' + dump(binaryCodec.encode(answer)) + '\n```'), 'binary answer');
  assert.ok(doc.includes('```\n' + dump(binaryCodec.encode(cut)) + '\n```'), 'binary truncated answer');
  assert.ok(doc.includes(`answer above, ${binaryCodec.encode(answer).length} bytes`), 'answer size');
});

test('truncated travels as a 4th element true in binary, only when cut; absent or false reads as not truncated', () => {
  assert.equal((decodeBinaryServerFrame(binaryCodec.encode(answer)) as { truncated: boolean }).truncated, false);
  assert.equal(binaryCodec.encode(answer)[0], 0x93);
  assert.equal(binaryCodec.encode(cut)[0], 0x94);
  assert.equal((decodeBinaryServerFrame(binaryCodec.encode(cut)) as { truncated: boolean }).truncated, true);
  assert.ok(!jsonCodec.encode(answer).toString().includes('truncated'));
});
