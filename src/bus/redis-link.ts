import { Redis, type ChainableCommander, type RedisOptions } from 'ioredis';

/**
 * The bus's two connections to Redis (a publisher for commands, a subscriber for
 * pub/sub) and the way its calls are awaited.
 */
export class RedisLink {
  readonly pub: Redis;
  readonly sub: Redis;
  /** Rejecters of the Redis calls awaited now: a lost connection rejects them all. */
  private readonly inflight = new Set<(err: Error) => void>();

  constructor(url: string, nodeId: string) {
    const common: RedisOptions = {
      lazyConnect: true,
      // The bus holds messages itself (bounded) and never resends one whose fate is
      // unknown: at most once, in order.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
      connectTimeout: 3000
    };
    this.pub = new Redis(url, { ...common, connectionName: `zenconn-pub-${nodeId}` });
    this.sub = new Redis(url, { ...common, connectionName: `zenconn-sub-${nodeId}`, autoResubscribe: false });
  }

  /** Starts both connections; ioredis retries on its own (errors are reported as events). */
  connect(): void {
    this.pub.connect().catch(() => undefined);
    this.sub.connect().catch(() => undefined);
  }

  disconnect(): void {
    this.pub.disconnect();
    this.sub.disconnect();
  }

  /** Runs a MULTI or pipeline; returns the replies, throwing the first error. */
  async exec(m: ChainableCommander): Promise<unknown[]> {
    const res = await this.guard(m.exec());
    if (res === null) throw new Error('Redis transaction aborted');
    return res.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
  }

  /**
   * Awaits a Redis call, but rejects as soon as a connection is lost: ioredis leaves
   * the commands of a dropped connection pending forever when it does not resend them.
   */
  guard<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.inflight.add(reject);
      p.then(
        (v) => {
          this.inflight.delete(reject);
          resolve(v);
        },
        (err: unknown) => {
          this.inflight.delete(reject);
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      );
    });
  }

  /** Rejects every call awaited now with `err`. */
  rejectInflight(err: Error): void {
    const all = [...this.inflight];
    this.inflight.clear();
    for (const r of all) r(err);
  }
}
