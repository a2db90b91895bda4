import type { Redis } from 'ioredis';
import type { ChannelLog, LogRead, OlderEvents } from './channel-log.js';
import { readWithOlder, sliceWindow } from './channel-log.js';
import { decodeChannelMessage } from './redis-codec.js';
import { newEpoch } from './memory-log.js';
import type { EventFrame, Position } from '../protocol/frames.js';

/**
 * Lua: `e` = the channel's epoch (KEYS[2]); a missing one (first use, or Redis lost its
 * data) starts a new sequence: a new epoch from the prefix in ARGV[prefixArg] and the
 * Redis clock, the counter (KEYS[1]) at 0 and the window (KEYS[3]) emptied.
 */
function ensureEpoch(prefixArg: number): string {
  return `local e = redis.call('GET', KEYS[2])
if not e then
  local t = redis.call('TIME')
  e = ARGV[${prefixArg}] .. t[1] .. t[2]
  redis.call('SET', KEYS[2], e)
  redis.call('SET', KEYS[1], 0)
  redis.call('DEL', KEYS[3])
end
`;
}

/**
 * Gives an event its position and publishes it, in one script: Redis is the sequencer.
 * KEYS: seq, epoch, hist. ARGV: the record `[origin, exclude, frame]` (a MessagePack
 * fixarray of 3), an epoch prefix, history size, history TTL ms, the pub/sub channel.
 * A missing epoch (first use, or Redis lost its data) starts a new sequence with a new
 * epoch. The published (and kept) record is `[origin, exclude, frame, offset, epoch, at]`;
 * the script answers `[offset, epoch]`.
 */
const APPEND = `
${ensureEpoch(2)}local off = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = string.char(0x96) .. string.sub(ARGV[1], 2) .. cmsgpack.pack(off, e, now)
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('RPUSH', KEYS[3], rec)
  redis.call('LTRIM', KEYS[3], -size, -1)
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], rec)
return {off, e}
`;

/** Reads a channel's position and window at once (creating its epoch when missing). */
const READ = `
${ensureEpoch(1)}local off = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {e, off, now, redis.call('LRANGE', KEYS[3], 0, -1)}
`;

type Commands = Redis & {
  zcAppend(seq: string, epoch: string, hist: string, record: Buffer, prefix: string, size: number, ttlMs: number, target: string): Promise<[number, string]>;
  zcReadBuffer(seq: string, epoch: string, hist: string, prefix: string): Promise<[Buffer, number, number, Buffer[]]>;
};

/** The Redis keys of one channel's sequence (P = the bus prefix). */
function keysOf(prefix: string, channel: string): [string, string, string] {
  return [`${prefix}seq:${channel}`, `${prefix}epoch:${channel}`, `${prefix}hist:${channel}`];
}

/**
 * The ChannelLog of the Redis bus: `P seq:<channel>` (INCR counter), `P epoch:<channel>`
 * and `P hist:<channel>` (a list of the last `--history-size` records, expiring
 * `--history-ttl-ms` after the last event; entries older than that are skipped on read).
 * The sequence keys have no TTL: a Redis restart without persistence loses them, and
 * the next event starts a new epoch, which is exactly what the epoch is for.
 */
export class RedisLog implements ChannelLog {
  private readonly redis: Commands;
  /** Prefix of the epochs this node creates (Redis's clock makes each unique). */
  private readonly epochPrefix = newEpoch().slice(0, 6);

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly size: number,
    private readonly ttlMs: number,
    private readonly older: OlderEvents | null = null
  ) {
    redis.defineCommand('zcAppend', { numberOfKeys: 3, lua: APPEND });
    redis.defineCommand('zcRead', { numberOfKeys: 3, lua: READ });
    this.redis = redis as Commands;
  }

  /** Sequences and publishes a record on `target` (the channel's pub/sub channel); resolves with its position. */
  async sequence(channel: string, record: Buffer, target: string): Promise<Position> {
    const [seq, epoch, hist] = keysOf(this.prefix, channel);
    const [offset, e] = await this.redis.zcAppend(seq, epoch, hist, record, this.epochPrefix, this.size, this.ttlMs, target);
    return { offset: Number(offset), epoch: String(e) };
  }

  async read(channel: string, since: Position | null, limit: number): Promise<LogRead> {
    const [seq, epochKey, hist] = keysOf(this.prefix, channel);
    const [epochRaw, offset, now, list] = await this.redis.zcReadBuffer(seq, epochKey, hist, this.epochPrefix);
    const epoch = epochRaw.toString();
    const oldest = Number(now) - this.ttlMs;
    const entries: Array<{ offset: number; frame: EventFrame }> = [];
    for (const raw of list) {
      const r = decodeChannelMessage(Buffer.isBuffer(raw) ? raw : Buffer.from(raw), '');
      if (typeof r === 'string' || r.frame.type !== 'event' || r.frame.offset === undefined || r.frame.epoch !== epoch) continue;
      if (r.at !== undefined && r.at < oldest) continue;
      entries.push({ offset: r.frame.offset, frame: r.frame });
    }
    const latest = Number(offset);
    const { items, complete } = sliceWindow(entries, latest, epoch, since, limit);
    // Older than the window: from the audit trail the nodes share, within this epoch.
    return readWithOlder(channel, since, limit, { events: items.map((e) => e.frame), offset: latest, epoch, complete }, this.older);
  }
}
