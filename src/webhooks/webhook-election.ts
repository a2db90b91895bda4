import { Redis } from 'ioredis';
import { newId } from '../protocol/ids.js';
import type { DurableLogger } from '../store/durable/retry-policy.js';

/** Options of {@link WebhookElection}. */
export interface WebhookElectionOptions {
  /** The `--bus` Redis URL. */
  url: string;
  /** The `--bus-prefix`. */
  prefix: string;
  /** This sending process's id (a `serve` node's or an agent's server id). */
  nodeId: string;
  logger?: DurableLogger | undefined;
  /** How often this node says it is alive and looks for dead ones. Default 1000. */
  heartbeatMs?: number;
  /** Silent this long, a node is dead: its channels are taken out of the counts. Default 5000. */
  ttlMs?: number;
}

/** A result kept this long, so that a script run again after a lost reply answers the same. */
const OP_TTL_MS = 60_000;

// KEYS: channel set, node index, op key. ARGV: node id, channel. 1 = this node made the channel occupied.
const JOIN = `
local prev = redis.call('GET', KEYS[3])
if prev then return tonumber(prev) end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
local r = 0
if redis.call('SCARD', KEYS[1]) == 1 then r = 1 end
redis.call('SET', KEYS[3], r, 'PX', ${OP_TTL_MS})
return r`;

// Same keys. 1 = this node's leaving emptied the channel.
const LEAVE = `
local prev = redis.call('GET', KEYS[3])
if prev then return tonumber(prev) end
redis.call('SREM', KEYS[2], ARGV[2])
local r = 0
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 0 then r = 1 end
redis.call('SET', KEYS[3], r, 'PX', ${OP_TTL_MS})
return r`;

// KEYS: the dead node's alive key, its node index, the node set. ARGV: its id, the channel key head.
// Returns the channels its removal emptied; only the first caller gets them (the index is gone after).
const REAP = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {} end
local out = {}
for _, ch in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local k = ARGV[2] .. ch
  if redis.call('SREM', k, ARGV[1]) == 1 and redis.call('SCARD', k) == 0 then table.insert(out, ch) end
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return out`;

/**
 * Decides `channel_occupied` and `channel_vacated` on the cluster-wide counts when several
 * nodes share a Redis (`--bus`), so that exactly one node sends each. Redis keeps, per
 * channel, the set of nodes with members (`P wh:ch:<channel>`), and per node the channels
 * it is in (`P wh:node:<id>`). A node whose own count of a channel goes 0 → 1 adds itself
 * in one Lua script: the node that makes the set's size 1 is the one that sends
 * `channel_occupied`; 1 → 0 removes it, and the node that empties the set sends
 * `channel_vacated`. A node that stops saying it is alive (`P wh:alive:<id>`, a TTL) is
 * removed from every set by the first live node to notice, which sends `channel_vacated`
 * for the channels that emptied.
 *
 * Calls wait while Redis is away (ioredis's offline queue; no call fails for that); each
 * carries an operation id, so a script repeated after a lost reply answers as the first.
 */
export class WebhookElection {
  private readonly redis: Redis;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private timer: NodeJS.Timeout | null = null;
  private beating = false;
  private closed = false;
  private onReaped: (channels: string[]) => void = () => undefined;
  private localChannels: () => Iterable<string> = () => [];
  private connectedOnce = false;

  constructor(private readonly o: WebhookElectionOptions) {
    this.heartbeatMs = o.heartbeatMs ?? 1000;
    this.ttlMs = o.ttlMs ?? 5000;
    this.redis = new Redis(o.url, {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
      connectionName: `zenconn-webhooks-${o.nodeId}`
    });
    this.redis.on('error', () => undefined);
  }

  /**
   * Connects and starts the heartbeat; `reaped` gets the channels a dead node's removal
   * emptied; `local` lists the channels this node has members of, written again after a
   * reconnection (a Redis that restarted empty has lost them).
   */
  start(reaped: (channels: string[]) => void, local: () => Iterable<string>): void {
    this.onReaped = reaped;
    this.localChannels = local;
    this.redis.on('ready', () => {
      if (this.connectedOnce) void this.rejoin();
      this.connectedOnce = true;
    });
    this.redis.connect().catch(() => undefined);
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  /** This node's members of `channel` went 0 → 1: true when it is the one to send `channel_occupied`. */
  joined(channel: string): Promise<boolean> {
    return this.run(JOIN, channel);
  }

  /** This node's members of `channel` went 1 → 0: true when it is the one to send `channel_vacated`. */
  left(channel: string): Promise<boolean> {
    return this.run(LEAVE, channel);
  }

  /** Stops; this node's keys are removed (its channels were left by the closing sessions before). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    const p = this.o.prefix;
    try {
      if (this.redis.status === 'ready') await this.redis.multi().del(`${p}wh:alive:${this.o.nodeId}`).srem(`${p}wh:nodes`, this.o.nodeId).exec();
    } catch {
      // It expires.
    }
    this.redis.disconnect();
  }

  private async run(script: string, channel: string): Promise<boolean> {
    const p = this.o.prefix;
    try {
      const r = await this.redis.eval(script, 3, `${p}wh:ch:${channel}`, `${p}wh:node:${this.o.nodeId}`, `${p}wh:op:${newId()}`, this.o.nodeId, channel);
      return r === 1;
    } catch (err) {
      // Only a stopping node gets here (the connection closed under the call).
      this.o.logger?.warn({ err, channel }, 'webhooks: could not decide a channel event on Redis');
      return false;
    }
  }

  /** Puts this node back in the sets of its channels, deciding nothing (they were occupied already). */
  private async rejoin(): Promise<void> {
    const p = this.o.prefix;
    try {
      for (const channel of this.localChannels()) {
        if (this.closed) return;
        await this.redis.eval(JOIN, 3, `${p}wh:ch:${channel}`, `${p}wh:node:${this.o.nodeId}`, `${p}wh:op:${newId()}`, this.o.nodeId, channel);
      }
    } catch (err) {
      if (!this.closed) this.o.logger?.warn({ err }, 'webhooks: could not write this node\'s channels to Redis again');
    }
  }

  private async beat(): Promise<void> {
    if (this.beating || this.closed) return;
    this.beating = true;
    const p = this.o.prefix;
    try {
      await this.redis.multi().set(`${p}wh:alive:${this.o.nodeId}`, '1', 'PX', this.ttlMs).sadd(`${p}wh:nodes`, this.o.nodeId).exec();
      const nodes = await this.redis.smembers(`${p}wh:nodes`);
      for (const id of nodes) {
        if (id === this.o.nodeId || this.closed) continue;
        const emptied = (await this.redis.eval(REAP, 3, `${p}wh:alive:${id}`, `${p}wh:node:${id}`, `${p}wh:nodes`, id, `${p}wh:ch:`)) as string[];
        if (emptied.length > 0) {
          this.o.logger?.warn({ node: id, channels: emptied.length }, 'webhooks: a node stopped answering; the channels only it had are vacated');
          this.onReaped(emptied);
        }
      }
    } catch (err) {
      if (!this.closed) this.o.logger?.warn({ err }, 'webhooks: Redis heartbeat failed');
    } finally {
      this.beating = false;
    }
  }
}
