/**
 * The uWebSockets.js reference server: what a Node process can reach when the socket
 * layer and the fan-out are C++ (uWS's pub/sub). It speaks the bare `ws` loop's JSON
 * frames (ws-server.ts) so the same clients measure it, and does the same per-message
 * work in JavaScript: JSON.parse of the broadcast, the `received` answer with the count
 * first, one JSON.stringify of the event with a fresh id. The fan-out is a publish to
 * the channel's topic, every subscriber but the sender, as the ws loop does: the
 * publisher is not subscribed in the bench, so that is `app.publish`; a subscribed
 * sender uses `ws.publish`, which leaves the sender out.
 *
 * Backpressure: uWS skips a subscriber whose buffer is over `maxBackpressure` (default
 * 64 KiB); the load generator bounds what is in flight (--max-lag), and the limit is
 * raised so that nothing is skipped and an exact count is still a fair comparison.
 *
 * Usage: node dist/bench/uws-server.js --port 0 --host 127.0.0.1
 * Prints `listening on http://HOST:PORT` when ready; exits 3 with the reason when uWS
 * does not load on this Node (see uws-load.ts).
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadUws } from './uws-load.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } }
});

const loaded = loadUws();
if (!('uws' in loaded)) {
  process.stderr.write(`uws-server: ${loaded.reason}\n`);
  process.exit(3);
}
const { uws } = loaded;

interface Frame {
  type?: unknown;
  channel?: unknown;
  data?: unknown;
}

interface Peer {
  id: string;
}

const app = uws.App();
app.ws<Peer>('/*', {
  maxPayloadLength: 1024 * 1024,
  idleTimeout: 0,
  sendPingsAutomatically: false,
  maxBackpressure: 64 * 1024 * 1024,
  open(ws) {
    const id = randomUUID();
    ws.getUserData().id = id;
    ws.send(JSON.stringify({ type: 'accepted', data: id }));
  },
  message(ws, message) {
    let frame: Frame;
    try {
      frame = JSON.parse(Buffer.from(message).toString()) as Frame;
    } catch {
      ws.send(JSON.stringify({ type: 'error', channel: '*', errors: ['invalid JSON'] }));
      return;
    }
    const channel = typeof frame.channel === 'string' ? frame.channel : '*';
    switch (frame.type) {
      case 'subscribe':
        ws.subscribe(channel);
        ws.send(JSON.stringify({ type: 'subscribed', channel }));
        break;
      case 'unsubscribe':
        ws.unsubscribe(channel);
        ws.send(JSON.stringify({ type: 'unsubscribed', channel }));
        break;
      case 'broadcast': {
        const subscribed = ws.isSubscribed(channel);
        const count = app.numSubscribers(channel) - (subscribed ? 1 : 0);
        ws.send(JSON.stringify({ type: 'received', channel, count }));
        if (count === 0) break;
        const event = JSON.stringify({ type: 'event', channel, data: frame.data, from: ws.getUserData().id, id: randomUUID() });
        if (subscribed) ws.publish(channel, event);
        else app.publish(channel, event);
        break;
      }
      default:
        ws.send(JSON.stringify({ type: 'error', channel, errors: ['unknown frame type'] }));
    }
  }
});

app.listen(values.host!, Number(values.port), (socket) => {
  if (socket === false) {
    process.stderr.write(`uws-server: cannot listen on ${values.host}:${values.port}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening on http://${values.host}:${uws.us_socket_local_port(socket)}\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
