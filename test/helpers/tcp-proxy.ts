import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1, port 0, for outage tests: put it between a client and
 * a real server (e.g. PostgreSQL), then `cut()` and `restore()` the link.
 */
export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** Forwarded connections currently open. */
  readonly connections: number;
  /**
   * Destroys every live connection. Until `restore()`, new connections are reset at
   * once (`'refuse'`, the default, like a server that is down) or accepted and left
   * silent (`'hold'`, like a network that drops packets).
   */
  cut(mode?: 'refuse' | 'hold'): void;
  /** Forwards new connections again; held ones are destroyed. */
  restore(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/**
 * Starts a proxy to `target` (host default `127.0.0.1`). `delayMs` > 0 holds every
 * chunk that long in each direction, in order: a distant server.
 */
export async function startTcpProxy(target: { host?: string; port: number; delayMs?: number }): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1';
  const delayMs = target.delayMs ?? 0;
  const live = new Set<Socket>();
  const held = new Set<Socket>();
  let state: 'open' | 'refuse' | 'hold' = 'open';

  const server = createServer((client) => {
    client.on('error', () => undefined);
    if (state === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (state === 'hold') {
      held.add(client);
      client.pause();
      client.on('close', () => held.delete(client));
      return;
    }
    const upstream = connect({ host, port: target.port });
    upstream.on('error', () => undefined);
    live.add(client);
    live.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    if (delayMs > 0) {
      // Timers of one delay fire in the order they were set: the stream stays in order.
      client.on('data', (chunk: Buffer) => setTimeout(() => upstream.writable && upstream.write(chunk), delayMs));
      upstream.on('data', (chunk: Buffer) => setTimeout(() => client.writable && client.write(chunk), delayMs));
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp-proxy: no port');

  return {
    port: address.port,
    get connections() {
      return live.size / 2;
    },
    cut(mode = 'refuse') {
      state = mode;
      for (const s of live) s.destroy();
      live.clear();
    },
    restore() {
      state = 'open';
      for (const s of held) s.destroy();
      held.clear();
    },
    async close() {
      state = 'refuse';
      for (const s of [...live, ...held]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
}
