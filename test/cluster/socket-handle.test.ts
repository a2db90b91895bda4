import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sendSocketHandle } from '../../src/cluster/socket-handle.js';
import { ROOT } from '../helpers/process.js';
import { tempDir } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A connection handed to another process as its raw handle (the agent to a worker, a
 * worker to the agent): it works there, the process that received it holds no close
 * listener for it (a `net.Socket` accepted by a server and sent as one would get
 * child_process's, for its whole life: #15), and the sender's copy is closed.
 */
test('a connection sent as its raw handle is served by the other process, which keeps no listener for it, and the copy here closes', async () => {
  const dir = tempDir();
  const child = join(dir, 'child.mjs');
  const module = pathToFileURL(join(ROOT, 'dist', 'src', 'cluster', 'socket-handle.js')).href;
  writeFileSync(
    child,
    `import { socketFromHandle } from ${JSON.stringify(module)};
process.on('message', (message, handle) => {
  const socket = socketFromHandle(handle, false);
  socket.once('data', (data) => socket.end(message.t + ' ' + data + ' close-listeners=' + socket.listenerCount('close')));
});
process.send('ready');
`
  );
  const worker = fork(child, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const server = createServer({ pauseOnConnect: true });
  try {
    await once(worker, 'message');
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const [socket] = await accepted;
    let failed = false;
    sendSocketHandle(worker.send.bind(worker), { t: 'conn' }, socket, () => (failed = true));
    client.write('hello');
    let answer = '';
    client.on('data', (d: Buffer) => (answer += d.toString()));
    await once(client, 'end');
    assert.equal(answer, 'conn hello close-listeners=0');
    assert.equal(failed, false);
    await waitFor("this process's copy closed", () => socket.destroyed);
    client.destroy();

    // No process at the other end: the copy closes here at once, and the failure is reported.
    const gone = once(server, 'connection') as Promise<[Socket]>;
    const other = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const [orphan] = await gone;
    let reported = false;
    sendSocketHandle(undefined, { t: 'conn' }, orphan, () => (reported = true));
    assert.equal(reported, true);
    assert.equal(orphan.destroyed, true);
    other.destroy();
  } finally {
    worker.kill();
    server.close();
  }
});
