import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { connectPublisher, connectSubscriber, type Delivery } from '../../bench/client-protocols.js';
import { makePayload } from '../../bench/payload.js';
import { ServerProcess } from '../../bench/server-process.js';
import { loadUws } from '../../bench/uws-load.js';

const UWS_SERVER = fileURLToPath(new URL('../../bench/uws-server.js', import.meta.url));

test('uWS loads only from a binary for this Node: an ABI it has none for is a reason, never the ws fallback', () => {
  const none = loadUws('1');
  assert.ok('reason' in none);
  assert.match(none.reason, /does not load on Node .*ABI 1\b/);
  const here = loadUws();
  if ('uws' in here) {
    assert.match(here.file, new RegExp(`uws_${process.platform}_${process.arch}_${process.versions.modules}\\.node$`));
    assert.equal(typeof here.uws.App, 'function');
  } else {
    assert.match(here.reason, /uWebSockets\.js does not load|is not installed/);
  }
});

test('the uWS reference server speaks the bare ws loop frames to the bench clients', { timeout: 20_000 }, async (t) => {
  const loaded = loadUws();
  if (!('uws' in loaded)) {
    t.skip(loaded.reason);
    return;
  }
  const server = await ServerProcess.start({ command: process.execPath, args: [UWS_SERVER, '--port', '0', '--host', '127.0.0.1'] });
  try {
    const got: Delivery[][] = [[], []];
    let wake: () => void = () => {};
    const subscribers = await Promise.all(
      got.map((list) =>
        connectSubscriber({
          target: server.address,
          protocol: 'json',
          channel: 'bench',
          onEvent: (d) => {
            list.push(d);
            wake();
          },
          onClose: () => {},
          onUnexpected: (frame) => assert.fail(`unexpected frame ${frame}`)
        })
      )
    );
    const publisher = await connectPublisher({ target: server.address, protocol: 'json', channel: 'bench', onFailure: (m) => assert.fail(m) });
    const counts: number[] = [];
    for (let s = 0; s < 3; s++) publisher.publish(makePayload(s, true), (count) => {
      counts.push(count);
      wake();
    });
    await new Promise<void>((resolve) => {
      wake = () => {
        if (got.every((list) => list.length === 3) && counts.length === 3) resolve();
      };
      wake();
    });
    assert.deepEqual(counts, [2, 2, 2]);
    for (const list of got) assert.deepEqual(list.map((d) => d.s), [0, 1, 2]);
    publisher.close();
    for (const s of subscribers) s.close();
  } finally {
    await server.stop();
  }
});
