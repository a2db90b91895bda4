import type { EventFrame, Position } from '../protocol/frames.js';
import { readWithOlder, type ChannelLog, type LogRead, type OlderEvents } from '../bus/channel-log.js';
import { MemoryLog, type MemoryLogOptions } from '../bus/memory-log.js';

export type { OlderEvents };

/**
 * The ChannelLog of a process that is its own sequencer (`serve` without `--bus`): a
 * counter and a hot window per channel in memory, assigned synchronously as the hub
 * sends an event, before it is encoded. A read that reaches back before the window is
 * completed from the audit trail (`older`), so the two serve one request together.
 */
export class LocalChannelLog implements ChannelLog {
  private readonly log: MemoryLog<EventFrame>;

  constructor(options: MemoryLogOptions, private readonly older: OlderEvents | null = null) {
    this.log = new MemoryLog(options);
  }

  append(frame: EventFrame): void {
    const p = this.log.append(frame.channel, frame);
    frame.offset = p.offset;
    frame.epoch = p.epoch;
  }

  read(channel: string, since: Position | null, limit: number): LogRead | Promise<LogRead> {
    const r = this.log.read(channel, since, limit);
    const hot: LogRead = { events: r.items.map((k) => k.item), offset: r.offset, epoch: r.epoch, complete: r.complete };
    return readWithOlder(channel, since, limit, hot, this.older);
  }

  close(): void {
    this.log.close();
  }
}
