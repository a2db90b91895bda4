import type { EventFrame, Position } from '../protocol/frames.js';
import type { ChannelLog, LogRead } from '../bus/channel-log.js';
import { MemoryLog, type MemoryLogOptions } from '../bus/memory-log.js';

/**
 * The ChannelLog of a process that is its own sequencer (`serve` without `--bus`): a
 * counter and a hot window per channel in memory, assigned synchronously as the hub
 * sends an event, before it is encoded.
 */
export class LocalChannelLog implements ChannelLog {
  private readonly log: MemoryLog<EventFrame>;

  constructor(options: MemoryLogOptions) {
    this.log = new MemoryLog(options);
  }

  append(frame: EventFrame): void {
    const p = this.log.append(frame.channel, frame);
    frame.offset = p.offset;
    frame.epoch = p.epoch;
  }

  read(channel: string, since: Position | null, limit: number): LogRead {
    const r = this.log.read(channel, since, limit);
    return { events: r.items.map((k) => k.item), offset: r.offset, epoch: r.epoch, complete: r.complete };
  }

  close(): void {
    this.log.close();
  }
}
