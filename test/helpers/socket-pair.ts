import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

let server: Server | null = null;
let waiter: ((s: Socket) => void) | null = null;

/**
 * A real connected pair of TCP sockets on 127.0.0.1 (port 0): the client end and the end the
 * server accepted. One listener per test file, unref'd so it never keeps the file running.
 */
export async function socketPair(): Promise<[Socket, Socket]> {
  if (server === null) {
    const s = createServer();
    s.on('connection', (c) => waiter?.(c));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    s.unref();
    server = s;
  }
  const accepted = new Promise<Socket>((r) => (waiter = r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  return [client, await accepted];
}
