/**
 * The Socket.IO 4 reference server, written the way a Socket.IO user writes it:
 * websocket transport only, subscribers `join` a room, the publisher emits `broadcast`
 * with an ack; the server does `socket.to(room).emit('event', data)` (the in-memory
 * adapter encodes the packet once and writes it to every member but the sender) and
 * acks with the number of recipients.
 *
 * Usage: node dist/bench/socketio-server.js --port 0 --host 127.0.0.1
 * Prints `listening on http://HOST:PORT` when ready.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } }
});

interface BroadcastRequest {
  room: string;
  data: unknown;
}

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (room: string, ack?: () => void) => {
    void socket.join(room);
    ack?.();
  });

  socket.on('broadcast', ({ room, data }: BroadcastRequest, ack?: (count: number) => void) => {
    socket.to(room).emit('event', data);
    const members = io.of('/').adapter.rooms.get(room);
    ack?.(members === undefined ? 0 : members.size - (members.has(socket.id) ? 1 : 0));
  });
});

http.listen(Number(values.port), values.host, () => {
  const address = http.address();
  const port = typeof address === 'object' && address !== null ? address.port : Number(values.port);
  process.stdout.write(`listening on http://${values.host}:${port}\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
