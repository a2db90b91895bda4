import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { reply } from '../../src/http/respond.js';
import { unpackValue } from '../../src/protocol/msgpack-reader.js';

/** What `reply` writes, caught by a stand-in response. */
function answer(body: unknown, headers: Record<string, string> = { 'x-bin-protocol': '1' }): { status: number; head: Record<string, string>; bytes: Buffer } {
  const req = { method: 'GET', headers } as unknown as IncomingMessage;
  const out: { status: number; head: Record<string, string>; bytes: Buffer } = { status: 0, head: {}, bytes: Buffer.alloc(0) };
  const res = {
    writeHead(status: number, head: Record<string, string>) {
      out.status = status;
      out.head = head;
    },
    end(b: Buffer) {
      out.bytes = b;
    }
  } as unknown as ServerResponse;
  reply(req, res, 200, body);
  return out;
}

test('a MessagePack answer is plain MessagePack that the strict reader reads back', () => {
  // The shape of an audit page: small maps, undefined fields, bytes and dates in a payload.
  const row = {
    id: '0193a8c2-5f00-7a3b-8c1d-2e4f6a8b0c1d',
    message_id: null,
    at: '2026-01-02T03:04:05.006Z',
    direction: 'in',
    payload: { img: new Uint8Array([0, 1, 255]), when: new Date(1234567), gone: undefined, n: 1.5 },
    recipients: 3
  };
  const { status, head, bytes } = answer({ rows: [row], next: undefined });
  assert.equal(status, 200);
  assert.equal(head['Content-Type'], 'application/msgpack');
  assert.equal(head['Content-Length'], String(bytes.length));
  assert.equal(bytes[0], 0x82, 'a fixmap, not map16');
  const r = unpackValue(bytes);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.equal(r.hasBinary, true);
  assert.deepEqual(r.value, {
    rows: [{ ...row, payload: { img: new Uint8Array([0, 1, 255]), when: new Date(1234567), gone: null, n: 1.5 } }],
    next: null
  });
});

test('an error answer without X-Bin-Protocol stays JSON', () => {
  const { head, bytes } = answer({ error: 'nope', code: 'ERR_X' }, {});
  assert.equal(head['Content-Type'], 'application/json; charset=utf-8');
  assert.deepEqual(JSON.parse(bytes.toString('utf8')), { error: 'nope', code: 'ERR_X' });
});
