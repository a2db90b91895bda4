/**
 * The bare `ws` reference server: the least code that does the bench's job, written
 * for speed, so that zenconn's CPU per delivery can be compared with a floor.
 *
 * It speaks zenconn's JSON frames (accepted, subscribe/subscribed, broadcast/received,
 * event) with no auth, no validation beyond JSON.parse, and no limits. A broadcast is
 * answered with its recipient count first, then encoded once and the same bytes are
 * sent to every other subscriber of the channel. Writes are coalesced: each recipient's
 * socket is corked on its first write of the turn and all are uncorked together at the
 * end of the turn (process.nextTick), so a burst of broadcasts read from the
 * publisher's socket in one turn costs one writev per recipient, not one per frame.
 *
 * With `--frame-once` the WebSocket frame itself is built once too (header + payload,
 * unmasked) and written straight to each recipient's net.Socket, skipping ws's Sender
 * per recipient: the floor under the floor, to show what per-recipient framing costs.
 *
 * With `--ping-interval-ms N` (0: none, the default) it pings every socket every N ms
 * the way zenconn does: one sweep timer for all (not a timer per socket), and a socket
 * that did not answer the previous ping is terminated. The scale bench passes its
 * `--ping-interval-ms`, so the ws row's idle CPU is the floor for that ping cadence.
 *
 * Usage: node dist/bench/ws-server.js --port 0 --host 127.0.0.1 [--frame-once] [--ping-interval-ms 25000]
 * Prints `listening on http://HOST:PORT` when ready.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'frame-once': { type: 'boolean', default: false },
    'ping-interval-ms': { type: 'string', default: '0' }
  }
});
const frameOnce = values['frame-once'];

/** Channel name → its subscribers. */
const channels = new Map<string, Set<WebSocket>>();
/** Sockets corked in this turn, uncorked together by `flush`. */
const corked: Socket[] = [];
let flushScheduled = false;
/** ws sends Buffers as binary frames unless told otherwise. */
const TEXT = { binary: false } as const;

function flush(): void {
  flushScheduled = false;
  for (const socket of corked) socket.uncork();
  corked.length = 0;
}

/** ws keeps the net.Socket private. */
function socketOf(ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket;
}

/** Cork counts nest, so ws's own cork/uncork around each frame stays inside ours. */
function corkOnce(socket: Socket): void {
  if (socket.writableCorked > 0) return;
  socket.cork();
  corked.push(socket);
  if (!flushScheduled) {
    flushScheduled = true;
    process.nextTick(flush);
  }
}

/** An unmasked, final text frame around `payload` (RFC 6455 §5.2). */
function textFrame(payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, header);
  return frame;
}

interface Frame {
  type?: unknown;
  channel?: unknown;
  data?: unknown;
}

const http = createServer((_req, res) => {
  res.writeHead(426).end();
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false });

/** Open sockets and whether each answered its last ping (only with --ping-interval-ms). */
const alive = new Map<WebSocket, boolean>();
const pingIntervalMs = Number(values['ping-interval-ms']);
if (pingIntervalMs > 0) {
  setInterval(() => {
    for (const [ws, answered] of alive) {
      if (!answered) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, pingIntervalMs).unref();
}
function pong(this: WebSocket): void {
  alive.set(this, true);
}

wss.on('connection', (ws) => {
  const id = randomUUID();
  if (pingIntervalMs > 0) {
    alive.set(ws, true);
    ws.on('pong', pong);
  }
  const joined = new Set<string>();
  ws.send(JSON.stringify({ type: 'accepted', data: id }));

  ws.on('message', (raw: Buffer) => {
    let frame: Frame;
    try {
      frame = JSON.parse(raw.toString()) as Frame;
    } catch {
      ws.send(JSON.stringify({ type: 'error', channel: '*', errors: ['invalid JSON'] }));
      return;
    }
    const channel = typeof frame.channel === 'string' ? frame.channel : '*';
    switch (frame.type) {
      case 'subscribe': {
        let members = channels.get(channel);
        if (members === undefined) channels.set(channel, (members = new Set()));
        members.add(ws);
        joined.add(channel);
        ws.send(JSON.stringify({ type: 'subscribed', channel }));
        break;
      }
      case 'unsubscribe':
        leave(ws, channel);
        joined.delete(channel);
        ws.send(JSON.stringify({ type: 'unsubscribed', channel }));
        break;
      case 'broadcast': {
        const members = channels.get(channel);
        const count = members === undefined ? 0 : members.size - (members.has(ws) ? 1 : 0);
        ws.send(JSON.stringify({ type: 'received', channel, count }));
        if (members === undefined || count === 0) break;
        const bytes = Buffer.from(
          JSON.stringify({ type: 'event', channel, data: frame.data, from: id, id: randomUUID() })
        );
        if (frameOnce) {
          const frame = textFrame(bytes);
          for (const member of members) {
            if (member === ws || member.readyState !== WebSocket.OPEN) continue;
            const socket = socketOf(member);
            corkOnce(socket);
            socket.write(frame);
          }
          break;
        }
        for (const member of members) {
          if (member === ws || member.readyState !== WebSocket.OPEN) continue;
          corkOnce(socketOf(member));
          member.send(bytes, TEXT);
        }
        break;
      }
      default:
        ws.send(JSON.stringify({ type: 'error', channel, errors: ['unknown frame type'] }));
    }
  });

  ws.on('close', () => {
    alive.delete(ws);
    for (const channel of joined) leave(ws, channel);
    joined.clear();
  });
});

function leave(ws: WebSocket, channel: string): void {
  const members = channels.get(channel);
  if (members === undefined) return;
  members.delete(ws);
  if (members.size === 0) channels.delete(channel);
}

http.listen(Number(values.port), values.host, () => {
  const address = http.address();
  const port = typeof address === 'object' && address !== null ? address.port : Number(values.port);
  process.stdout.write(`listening on http://${values.host}:${port}\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
