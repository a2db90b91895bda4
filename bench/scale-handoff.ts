/**
 * The ceiling of the agent's hand-off on this machine (#15): a parent that only accepts
 * connections (paused) and passes each socket to a child with `child.send({}, socket)`,
 * as the agent's placement does; the child writes one byte on it. Node sends one handle
 * per IPC channel at a time (the next waits for the child's ack), so this is what the
 * hand-off alone allows, with no HTTP, WebSocket or session work on either side.
 *
 * Usage: node dist/bench/scale-handoff.js [connections 8000] [children 2] [in flight 128]
 */
import { fork } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

if (process.send !== undefined && process.argv[2] === 'child') {
  const held: Socket[] = [];
  process.on('message', (_m, socket) => {
    if (socket === undefined) return;
    const s = socket as Socket;
    s.write('x');
    held.push(s);
  });
  process.on('disconnect', () => process.exit(0));
  process.send('ready');
} else {
  const n = Number(process.argv[2] ?? 8000);
  const children = Number(process.argv[3] ?? 2);
  const inFlight = Number(process.argv[4] ?? 128);
  const self = fileURLToPath(import.meta.url);
  const kids = Array.from({ length: children }, () => fork(self, ['child']));
  await Promise.all(kids.map((k) => new Promise((resolve) => k.once('message', resolve))));
  let i = 0;
  const server = createServer({ pauseOnConnect: true }, (socket) => void kids[i++ % children]!.send({}, socket));
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const port = (server.address() as { port: number }).port;
  const open: Socket[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        next++;
        await new Promise<void>((resolve) => {
          const c = createConnection(port, '127.0.0.1');
          c.once('data', () => {
            open.push(c);
            resolve();
          });
        });
      }
    })
  );
  const ms = performance.now() - started;
  process.stdout.write(`${n} sockets handed to ${children} children in ${ms.toFixed(0)} ms: ${((n / ms) * 1000).toFixed(0)}/s\n`);
  for (const c of open) c.destroy();
  for (const k of kids) k.kill();
  server.close();
}
