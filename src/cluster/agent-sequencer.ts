import { deserialize } from 'node:v8';
import type { BusMessage } from '../bus/bus.js';
import { readWithOlder, type LogRead, type OlderEvents } from '../bus/channel-log.js';
import { MemoryLog } from '../bus/memory-log.js';
import type { EventFrame, Position } from '../protocol/frames.js';
import type { BusRouter } from './bus-router.js';
import type { RedisBridge } from './redis-bridge.js';

/**
 * The agent as the sequencer of its workers' events (docs/architecture.md, Positions).
 * A worker sends each event on a channel (not `*`) here instead of to its peers
 * (`sequence`); the agent gives it the channel's next offset, keeps it in the hot window
 * and routes it, with its position, to every worker with members, the sender's
 * included. Each agent → worker pipe is FIFO and the agent assigns in the order it
 * reads, so every worker sees a channel's events in offset order, with the same offsets.
 * With `--bus` Redis is the sequencer instead: the event goes to the Redis bus, which
 * sends it back with its position, and the agent routes it as any other node's.
 *
 * A history read answered here is queued behind every delivery already routed to the
 * asking worker, so it never misses an event that worker was sent.
 */
export class AgentSequencer {
  private readonly log: MemoryLog<Uint8Array>;

  constructor(
    private readonly busRouter: BusRouter,
    private readonly redisBridge: RedisBridge | null,
    options: { historySize: number; historyTtlMs: number },
    /** Events older than the window, from the agent's audit trail (its workers' rows). */
    private readonly older: OlderEvents | null = null
  ) {
    this.log = new MemoryLog({ size: options.historySize, ttlMs: options.historyTtlMs });
  }

  /**
   * A worker's event (a v8-serialized `BusMessage`), from worker `from`. That worker
   * always gets it back, members or not: it records the event's audit row with its
   * position (channels/pending-out.ts).
   */
  sequence(from: number, channel: string, payload: Uint8Array): void {
    if (this.redisBridge !== null) {
      // Back from Redis only to the workers with members: the sender may have none.
      this.redisBridge.publishPayload(payload, (p) => {
        if (p !== null) this.busRouter.publishToSender(from, channel, payload, p);
      });
      return;
    }
    const p = this.log.append(channel, payload);
    this.busRouter.publish(null, channel, payload, p);
    this.busRouter.publishToSender(from, channel, payload, p);
  }

  /** The events after `since` (see ChannelLog.read). */
  async read(channel: string, since: Position | null, limit: number): Promise<LogRead> {
    if (this.redisBridge !== null) return this.redisBridge.read(channel, since, limit);
    const r = this.log.read(channel, since, limit);
    const events = r.items.map((k) => {
      const f = (deserialize(k.item) as BusMessage).frame as EventFrame;
      f.offset = k.offset;
      f.epoch = r.epoch;
      return f;
    });
    return readWithOlder(channel, since, limit, { events, offset: r.offset, epoch: r.epoch, complete: r.complete }, this.older);
  }

  close(): void {
    this.log.close();
  }
}
