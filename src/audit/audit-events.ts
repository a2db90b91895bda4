import type { EventFrame } from '../protocol/frames.js';
import type { Store } from '../store/store.js';
import { decodePayload } from './audit-payload.js';

/**
 * A channel's events older than a hot window, read back from the audit trail's `out`
 * event rows that carry a position (offset > `after` in `epoch`, by offset): what a
 * sequencer's log (bus/channel-log.ts `readWithOlder`) completes its window with. Used by
 * `serve` alone, by an agent (its own store) and by the nodes of a Redis bus (their
 * shared database).
 */
export function auditEventReader(store: Store): (channel: string, epoch: string, after: number, limit: number) => Promise<EventFrame[]> {
  return async (channel, epoch, after, limit) => {
    const rows = await store.auditEvents(channel, epoch, after, limit);
    return rows.map((r) => ({
      type: 'event',
      channel,
      data: decodePayload(r.payload, r.payloadBin),
      from: r.sessionId,
      id: r.messageId ?? '',
      offset: r.eventOffset ?? 0,
      epoch
    }));
  };
}
