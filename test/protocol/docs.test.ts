/** docs/protocol.md is the client authors' reference: these keep it true to the code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import { encodeBinaryClientFrame as encodeClientFrame } from '../../src/protocol/client-codec.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { DecodeReason, Kind, MAX_DATA_DEPTH, MAX_TOKEN_LENGTH, RefreshReason } from '../../src/protocol/frames.js';
import { CloseCode } from '../../src/errors.js';
import { measureSizeRatio } from '../../bench/size-corpus.js';
import { EVENT_ID, OTHER, SESSION } from './helpers.js';

// Compiled to dist/test/protocol/: the repository root is three levels up.
const doc = readFileSync(fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url)), 'utf8');

/** The hex dump layout the doc uses: offset, then 16 bytes a line. */
function dump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    lines.push(i.toString(16).padStart(4, '0') + '  ' + [...b.subarray(i, i + 16)].map((x) => x.toString(16).padStart(2, '0')).join(' '));
  }
  return lines.join('\n');
}

test('the hex dumps in the doc are what the codec produces', () => {
  const chat = { type: 'event', channel: 'chat.room1', data: { user: 'alice', text: 'hi' }, from: OTHER, id: EVENT_ID } as const;
  assert.ok(doc.includes(dump(encodeClientFrame({ type: 'subscribe', channel: 'chat.room1' }))), 'subscribe');
  assert.ok(doc.includes(dump(binaryCodec.encode(chat))), 'event');
  assert.ok(doc.includes(dump(binaryCodec.encode({ type: 'accepted', data: SESSION }))), 'accepted');
  assert.ok(doc.includes(dump(binaryCodec.encode({ type: 'error', channel: 'news', errors: ['missing data'] }))), 'error');
  assert.ok(doc.includes(`${binaryCodec.encode(chat).length} bytes (the JSON form is ${jsonCodec.encode(chat).length})`));
  assert.ok(doc.includes(jsonCodec.encode(chat).toString()), 'the JSON event example');
  const refresh = { type: 'refresh', token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln' } as const;
  assert.ok(doc.includes(dump(encodeClientFrame(refresh))), 'refresh');
  assert.ok(doc.includes(`refresh\` with the token above, ${encodeClientFrame(refresh).length} bytes`), 'refresh size');
  assert.ok(doc.includes(JSON.stringify(refresh)), 'the JSON refresh example');
  assert.ok(doc.includes('```\n' + dump(binaryCodec.encode({ type: 'refreshed', exp: 1732694400 })) + '\n```'), 'refreshed');
  assert.ok(doc.includes('```\n' + dump(binaryCodec.encode({ type: 'refreshed', exp: null })) + '\n```'), 'refreshed without exp');
  assert.ok(doc.includes(jsonCodec.encode({ type: 'refreshed', exp: 1732698000 }).toString()), 'the JSON refreshed example');
});

test('the doc lists every refresh refusal and the refresh token limit', () => {
  for (const reason of Object.values(RefreshReason)) assert.ok(doc.includes('| `' + reason + '` | `*` |'), reason);
  assert.ok(doc.includes(`1 to ${MAX_TOKEN_LENGTH} characters`));
  assert.match(doc, new RegExp(`\\| 4001 \\| \`token expired\``));
});

test('the doc lists every decode reason', () => {
  for (const reason of Object.values(DecodeReason)) assert.ok(doc.includes('`' + reason + '`'), reason);
});

test('the doc lists every kind with its number', () => {
  for (const [name, n] of Object.entries(Kind)) assert.match(doc, new RegExp(`\\| ${n} \\| ${name} \\|`), name);
});

test('the doc lists every close code the server sends', () => {
  for (const code of Object.values(CloseCode)) if (code !== CloseCode.ABNORMAL) assert.match(doc, new RegExp(`\\| ${code} \\|`), String(code));
  assert.ok(doc.includes(`**${MAX_DATA_DEPTH}** levels`));
});

test('the size table in the doc matches the corpus', () => {
  const r = measureSizeRatio();
  assert.ok(doc.includes(`| **total (31)** | **${r.jsonBytes}** | **${r.binBytes}** | **${(r.ratio * 100).toFixed(1)} %** |`));
});
