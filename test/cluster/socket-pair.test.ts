import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { SocketPairMaker } from '../../src/cluster/socket-pair.js';

function once(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => socket.once('data', resolve));
}

describe('SocketPairMaker (the links between workers)', () => {
  test('makes connected pairs one job at a time; its socket is gone once the last job is done', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'zenconn-pairs-'));
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    const maker = new SocketPairMaker();
    try {
      const pairs: Array<[Socket, Socket]> = [];
      let running = 0;
      let most = 0;
      const done = Promise.all(
        [0, 1, 2].map(
          (i) =>
            new Promise<void>((resolve) =>
              maker.enqueue(async () => {
                running++;
                most = Math.max(most, running);
                pairs[i] = await maker.make();
                running--;
                resolve();
              })
            )
        )
      );
      await done;
      assert.equal(most, 1, 'one job at a time');
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
        const got = once(b);
        a.write('ping');
        assert.equal((await got).toString(), 'ping');
        const back = once(a);
        b.write('pong');
        assert.equal((await back).toString(), 'pong');
        a.destroy();
        b.destroy();
      }
      // The last job's `finally` closes the server: one more turn of the chain.
      await new Promise<void>((resolve) => maker.enqueue(async () => resolve()));
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.deepEqual(readdirSync(tmp), [], 'nothing left under TMPDIR');
    } finally {
      maker.close();
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a job that throws does not stop the next ones', async () => {
    const maker = new SocketPairMaker();
    maker.enqueue(async () => {
      throw new Error('boom');
    });
    const pair = await new Promise<[Socket, Socket]>((resolve) => maker.enqueue(async () => resolve(await maker.make())));
    pair[0].destroy();
    pair[1].destroy();
    maker.close();
  });
});
