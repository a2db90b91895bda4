import type { ClientFrame } from '../protocol/frames.js';

/** The inbound frame types counted by `zenconn_messages_received_total`: every client frame's, and `invalid` (did not decode). */
export type ReceivedType = ClientFrame['type'] | 'invalid';

/**
 * A process's session figures since it started, as plain fields the session manager
 * increments (one integer add on the message path, nothing per recipient). Metrics
 * (src/metrics/) read them when scraped. Bytes of open sessions live on each session;
 * these hold what closed sessions had, so a total is this plus the open sessions' own.
 */
export class SessionCounters {
  opened = 0;
  /** Close code → sessions closed with it. One entry per code seen (a small, fixed set). */
  readonly closed = new Map<number, number>();
  /** Admitted inbound frames by type. */
  readonly received: Record<ReceivedType, number> = { subscribe: 0, unsubscribe: 0, broadcast: 0, refresh: 0, presence: 0, history: 0, invalid: 0 };
  /** Inbound frames refused by the rate limit. */
  rateLimited = 0;
  /** Sessions closed with 1013 for their outbound buffer. */
  slowConsumerCloses = 0;
  /** Bytes received from and sent to sessions that have closed. */
  closedBytesIn = 0;
  closedBytesOut = 0;
}
