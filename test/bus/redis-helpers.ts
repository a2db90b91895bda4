/**
 * Redis helpers for the bus tests. The shared server comes from `ZENCONN_TEST_REDIS_URL`
 * (default `redis://127.0.0.1:6379/0`); a test that needs it FAILS (never skips) when it
 * is unreachable. Outage tests start their own `redis-server` on a spare port instead,
 * so they can kill it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startZen, type ZenProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir, TEST_JWT_SECRET, TEST_CHANNEL_SECRET } from '../helpers/server.js';

/** The Redis server tests use: `ZENCONN_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/0`. */
export function testRedisUrl(): string {
  return process.env.ZENCONN_TEST_REDIS_URL || 'redis://127.0.0.1:6379/0';
}

/** A fresh key prefix, so that parallel runs on one Redis never see each other. */
export function randomPrefix(): string {
  return `zctest:${randomBytes(6).toString('hex')}:`;
}

/** A client for checks (PUBSUB, keys); throws a clear error when Redis is unreachable. */
export async function redisClient(url = testRedisUrl()): Promise<Redis> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
  } catch (err) {
    r.disconnect();
    throw new Error(`Redis is not reachable at ${url} (set ZENCONN_TEST_REDIS_URL): ${(err as Error).message}`);
  }
  return r;
}

/** The shared poll (test/helpers/wait.ts): default 10 s, every 10 ms. */
export { waitFor };

/** GET a path of a local server: status and parsed JSON body. */
export function getJson(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** POST JSON to a local server with a bearer token: status and parsed JSON body. */
export function postJson(port: number, path: string, token: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      }
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** A free TCP port on 127.0.0.1 (free when asked; good enough for a test). */
export function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A `redis-server` child of the test, without persistence. */
export interface OwnRedis {
  port: number;
  url: string;
  child: ChildProcess;
  /** SIGKILL, resolved once it exited. */
  kill(): Promise<void>;
}

/** Path of redis-server: `ZENCONN_TEST_REDIS_SERVER`, default `/usr/bin/redis-server`. */
export function redisServerPath(): string {
  return process.env.ZENCONN_TEST_REDIS_SERVER || '/usr/bin/redis-server';
}

/** Starts `redis-server` on `port` (a spare one by default) and waits until it accepts connections. */
export async function startRedis(port?: number): Promise<OwnRedis> {
  const p = port ?? (await sparePort());
  const child = spawn(redisServerPath(), ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
    stdio: ['ignore', 'ignore', 'pipe']
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | null = null;
  child.once('error', (e) => (spawnError = e));
  const accepts = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const s = connect(p, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  try {
    await waitFor(`redis-server to listen on ${p}`, () => {
      if (spawnError) throw new Error(`cannot start ${redisServerPath()}: ${(spawnError as Error).message}`);
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode})`);
      return accepts();
    }, 5000, 20);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}; stderr: ${err}`);
  }
  return {
    port: p,
    url: `redis://127.0.0.1:${p}/0`,
    child,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
  };
}

/** A TCP proxy whose live connections can be frozen: open, but nothing passes (packets dropped). */
export interface FreezableProxy {
  readonly port: number;
  /** Stops forwarding on every connection, and holds new ones silent, without closing anything. */
  freeze(): void;
  /** Destroys the frozen connections and forwards new ones again. */
  thaw(): void;
  close(): Promise<void>;
}

/** Starts a freezable proxy on 127.0.0.1 to `targetPort`. */
export async function startFreezableProxy(targetPort: number): Promise<FreezableProxy> {
  const pairs = new Set<[import('node:net').Socket, import('node:net').Socket | null]>();
  let frozen = false;
  const server = createServer((client) => {
    client.on('error', () => undefined);
    if (frozen) {
      client.pause();
      pairs.add([client, null]);
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    upstream.on('error', () => undefined);
    const pair: [typeof client, typeof upstream] = [client, upstream];
    pairs.add(pair);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    freeze() {
      frozen = true;
      for (const [c, u] of pairs) {
        c.unpipe();
        u?.unpipe();
        c.pause();
        u?.pause();
      }
    },
    thaw() {
      frozen = false;
      for (const [c, u] of [...pairs]) {
        c.destroy();
        u?.destroy();
      }
      pairs.clear();
    },
    close: async () => {
      for (const [c, u] of pairs) {
        c.destroy();
        u?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
}

/** A Redis `delayMs` away in each direction, whose replies to the bus subscribers a test can hold back. */
export interface DistantRedis {
  readonly port: number;
  /**
   * From now on, what Redis sends to a RedisBus's subscriber connection (named
   * `zenconn-sub-…`) waits, in order, instead of reaching it: SUBSCRIBE acknowledgements
   * and pub/sub messages. The publisher connections keep flowing.
   */
  holdReplies(): void;
  /** Delivers the held chunks, in order, and forwards again. */
  releaseReplies(): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy on 127.0.0.1 to the Redis on `targetPort`, delaying every chunk by
 * `delayMs` each way. Holding the replies keeps a node's SUBSCRIBE unacknowledged for as
 * long as a test needs, so the test is in that window by construction, not by timing.
 */
export async function startDistantRedis(targetPort: number, delayMs: number): Promise<DistantRedis> {
  const sockets = new Set<Socket>();
  /** Subscriber connections: the chunks from Redis held back while `holding`. */
  const held = new Map<Socket, Buffer[]>();
  let holding = false;
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      sockets.add(s);
    }
    // What the client sent first, until its CLIENT SETNAME tells whether it is a subscriber.
    let head = '';
    let subscriber = false;
    const queue: Buffer[] = [];
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      held.delete(client);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    // Timers of one delay fire in the order they were set: each stream stays in order.
    client.on('data', (chunk: Buffer) => {
      if (!subscriber && head.length < 4096) {
        head += chunk.toString('latin1');
        if (head.includes('zenconn-sub-')) {
          subscriber = true;
          held.set(client, queue);
        }
      }
      setTimeout(() => upstream.writable && upstream.write(chunk), delayMs);
    });
    upstream.on('data', (chunk: Buffer) =>
      setTimeout(() => {
        if (holding && subscriber) queue.push(chunk);
        else if (client.writable) client.write(chunk);
      }, delayMs)
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    holdReplies() {
      holding = true;
    },
    releaseReplies() {
      holding = false;
      for (const [client, queue] of held) {
        for (const chunk of queue.splice(0)) if (client.writable) client.write(chunk);
      }
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
}

/** `zenconn serve --bus …` on a free port with its own SQLite database (and `extra` flags). */
export function serveOnBus(busUrl: string, prefix: string, extra: string[] = []): Promise<ZenProcess> {
  const dir = tempDir();
  return startZen(
    [
      'serve', '--port', '0', '--host', '127.0.0.1', '--public', join(dir, 'public'), '--database', `sqlite:${join(dir, 'z.db')}`,
      '--access-log', 'off', '--spool-dir', join(dir, 'spool'), '--audit-journal-dir', join(dir, 'journal'),
      '--jwt-secret', TEST_JWT_SECRET, '--channel-secret', TEST_CHANNEL_SECRET, '--bus', busUrl, '--bus-prefix', prefix, ...extra
    ],
    { timeoutMs: 20000 }
  );
}
