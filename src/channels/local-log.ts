import type { EventFrame, Position } from '../protocol/frames.js';
import type { ChannelLog, LogRead } from '../bus/channel-log.js';
import { MemoryLog, type MemoryLogOptions } from '../bus/memory-log.js';

/**
 * Where events older than the hot window are read: the audit trail's `out` event rows
 * with offset > `after` in `epoch`, by offset (node.ts wires the store's `auditEvents`).
 */
export type OlderEvents = (channel: string, epoch: string, after: number, limit: number) => Promise<EventFrame[]>;

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
    if (this.older === null || since === null || r.complete || limit <= 0 || since.epoch !== r.epoch || since.offset >= r.offset) return hot;
    const first = r.items.length > 0 ? r.items[0]!.offset : r.offset + 1;
    // The window starts right after `since` (it was cut by the limit): nothing older is needed.
    if (first <= since.offset + 1) return hot;
    return this.withOlder(channel, since, limit, hot, first);
  }

  close(): void {
    this.log.close();
  }

  /** The events from `since` up to the window from the audit trail, then the window's. */
  private async withOlder(channel: string, since: Position, limit: number, hot: LogRead, first: number): Promise<LogRead> {
    const gap = first - 1 - since.offset;
    const old = await this.older!(channel, hot.epoch, since.offset, Math.min(limit, gap));
    // Contiguous from since + 1, or the trail does not hold them (not durable yet, past retention).
    let next = since.offset + 1;
    for (const e of old) {
      if (e.offset !== next) return { ...hot, events: [], complete: false };
      next++;
    }
    const room = limit - old.length;
    const events = old.length < gap ? old : old.concat(hot.events.slice(0, Math.max(0, room)));
    const last = events.length === 0 ? since.offset : events[events.length - 1]!.offset!;
    return { events, offset: hot.offset, epoch: hot.epoch, complete: last === hot.offset };
  }
}
