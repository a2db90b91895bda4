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

/**
 * Where events older than a hot window are read: the audit trail's `out` event rows with
 * offset > `after` in `epoch`, by offset (audit/audit-events.ts reads them from a store).
 */
export type OlderEvents = (channel: string, epoch: string, after: number, limit: number) => Promise<EventFrame[]>;

/**
 * Completes a hot-window read `hot` (asked with `since` and `limit`) from the audit trail
 * when `since` is before the window, in the same epoch: the events from `since` up to the
 * window from `older`, then the window's. The epoch is the sequencer's, so the trail only
 * helps within one sequence. `complete` only when the rows are contiguous (rows not
 * durable yet or past retention make it incomplete). Returns `hot` when nothing older is needed.
 */
export function readWithOlder(channel: string, since: Position | null, limit: number, hot: LogRead, older: OlderEvents | null): LogRead | Promise<LogRead> {
  if (older === null || since === null || hot.complete || limit <= 0 || since.epoch !== hot.epoch || since.offset >= hot.offset) return hot;
  const first = hot.events.length > 0 ? hot.events[0].offset! : hot.offset + 1;
  // The window starts right after `since` (it was cut by the limit): nothing older is needed.
  if (first <= since.offset + 1) return hot;
  return withOlder(channel, since, limit, hot, first, older);
}

async function withOlder(channel: string, since: Position, limit: number, hot: LogRead, first: number, older: OlderEvents): Promise<LogRead> {
  const gap = first - 1 - since.offset;
  const old = await older(channel, hot.epoch, since.offset, Math.min(limit, gap));
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
