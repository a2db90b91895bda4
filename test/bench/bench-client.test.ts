import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { fastDelivery } from '../../bench/client-protocols.js';
import { RawWebSocket } from '../../bench/raw-ws-client.js';
import { makePayload } from '../../bench/payload.js';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { binaryCodec } from '../../src/protocol/binary-codec.js';
import type { ServerFrame } from '../../src/protocol/frames.js';

const SESSION = '0192f1a2-7b3c-7d4e-8f50-617283940a1b';
const EVENT_ID = '0192f1a2-7b3c-7d4e-8f50-617283940a1c';

function event(data: unknown): ServerFrame {
  return { type: 'event', channel: 'bench', data, from: SESSION, id: EVENT_ID };
}

test('the subscribers read t, s and m off the bytes as a full decode would', () => {
  for (const [s, measured] of [
    [0, false],
    [7, true],
    [123_456, true],
    [4_294_967_295, false]
  ] as const) {
    const payload = makePayload(s, measured);
    const want = { t: payload.t, s, m: measured ? 1 : 0 };
    for (const [protocol, codec] of [
      ['json', jsonCodec],
      ['binary', binaryCodec]
    ] as const) {
      const got = fastDelivery(protocol, Buffer.from(codec.encode(event(payload))));
      assert.ok(got !== undefined, `${protocol} ${s}`);
      assert.equal(got.s, want.s);
      assert.equal(got.m, want.m);
      // Digits read one by one: the same number as parseFloat to within a microsecond.
      assert.ok(Math.abs(got.t - want.t) < 1e-3, `${protocol} t ${got.t} vs ${want.t}`);
    }
  }
});

test('a payload laid out otherwise falls back to the full decode, and a non-event is not a delivery', () => {
  const reordered = Buffer.from(jsonCodec.encode(event({ s: 5, t: 1700000000000.5, m: 1 })));
  assert.deepEqual(fastDelivery('json', reordered), { t: 1700000000000.5, s: 5, m: 1 });
  const integerTime = Buffer.from(jsonCodec.encode(event({ t: 1700000000000, s: 9, m: 0, p: 'x' })));
  assert.deepEqual(fastDelivery('json', integerTime), { t: 1700000000000, s: 9, m: 0 });
  const noSeq = Buffer.from(jsonCodec.encode(event({ t: 1, m: 1 })));
  assert.equal(fastDelivery('json', noSeq), undefined);
  const notEvent = Buffer.from(jsonCodec.encode({ type: 'subscribed', channel: 'bench' }));
  assert.equal(fastDelivery('json', notEvent), undefined);
});

/**
 * A WebSocket "server" that answers the upgrade and then writes `frames` in slices of
 * `slice` bytes, one slice per socket per turn, so reads of several connections
 * interleave and frames straddle reads.
 */
async function slicingServer(frames: Buffer, slice: number): Promise<Server> {
  const server = createServer((socket: Socket) => {
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeAllListeners('data');
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)![1]!;
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      let at = 0;
      const next = (): void => {
        if (at >= frames.length || socket.destroyed) return;
        socket.write(frames.subarray(at, at + slice));
        at += slice;
        setTimeout(next, 1);
      };
      next();
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length < 126) return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
  const header = Buffer.from([0x81, 126, 0, 0]);
  header.writeUInt16BE(payload.length, 2);
  return Buffer.concat([header, payload]);
}

test('connections sharing the read buffer keep their partial frames apart', { timeout: 10_000 }, async () => {
  const messages = Array.from({ length: 40 }, (_, i) => `message ${i} `.padEnd(20 + ((i * 37) % 300), String.fromCharCode(97 + (i % 26))));
  const frames = Buffer.concat(messages.map(textFrame));
  // 7-byte slices: every frame header and payload is split over reads.
  const server = await slicingServer(frames, 7);
  const port = (server.address() as { port: number }).port;
  try {
    const received = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<string[]>((resolve, reject) => {
            const got: string[] = [];
            const ws = new RawWebSocket(
              { host: '127.0.0.1', port },
              {
                open() {},
                message(payload) {
                  got.push(payload.toString());
                  if (got.length === messages.length) {
                    ws.terminate();
                    resolve(got);
                  }
                },
                error: (message) => reject(new Error(message)),
                close: () => {}
              }
            );
          })
      )
    );
    for (const got of received) assert.deepEqual(got, messages);
  } finally {
    server.close();
  }
});
