import type { EventFrame, Position } from '../protocol/frames.js';

/**
 * What a history read found: the events after `since` (oldest first), the channel's
 * latest position, and whether nothing between `since` and it is missing.
 */
export interface LogRead {
  events: EventFrame[];
  /** The channel's latest offset (0: no event yet in this epoch). */
  offset: number;
  epoch: string;
  /**
   * With `since` in the same epoch: every event after it up to `offset` is in `events`
   * (none was cut by the limit, the window or the epoch). Without `since`: the events
   * reach back to offset 1.
   */
  complete: boolean;
}

/**
 * A channel's sequence and its hot history, as the hub sees it (docs/architecture.md,
 * Positions). Backends: memory-log.ts in the process (`serve` alone), the agent's (a
 * worker asks it over IPC), Redis (redis-log.ts).
 *
 * Contract:
 * - `append` exists only on a sequencer in this process: it gives the event the next
 *   offset of its channel (synchronously, before it is encoded) and keeps it. Without it
 *   the bus assigns the positions (`Bus.sequenced`).
 * - `read` answers the events with offset > `since.offset` when `since.epoch` is the
 *   current epoch, at most `limit`, oldest first (without `since`: the latest `limit`).
 *   `limit` 0 asks the position only. A read answered after an event was delivered to
 *   this process includes that event (or a later position).
 */
export interface ChannelLog {
  append?(frame: EventFrame): void;
  read(channel: string, since: Position | null, limit: number): LogRead | Promise<LogRead>;
  close?(): void;
}

/** Shapes a read of a window of `entries` (oldest first, consecutive offsets) into a LogRead's fields. */
export function sliceWindow<T extends { offset: number }>(
  entries: readonly T[],
  latest: number,
  epoch: string,
  since: Position | null,
  limit: number
): { items: T[]; complete: boolean } {
  const first = entries.length === 0 ? latest + 1 : entries[0].offset;
  if (since === null) {
    const items = limit <= 0 ? [] : entries.slice(Math.max(0, entries.length - limit));
    const start = items.length === 0 ? latest + 1 : items[0].offset;
    return { items, complete: start === 1 || latest === 0 };
  }
  if (since.epoch !== epoch || since.offset > latest) return { items: [], complete: false };
  const from = since.offset + 1;
  if (from > latest) return { items: [], complete: true };
  if (from < first) {
    // Older than the window: what the window has, marked incomplete.
    return { items: limit <= 0 ? [] : entries.slice(0, limit), complete: false };
  }
  const start = from - first;
  const items = limit <= 0 ? [] : entries.slice(start, start + limit);
  return { items, complete: start + items.length === entries.length && items.length > 0 };
}
