import type { Hub } from '../channels/hub.js';
import type { Session } from '../session/session.js';
import type { WorkerStats, WorkerTotals } from './ipc-messages.js';

const LAG_TICK_MS = 100;

/**
 * A process's figures for the agent's registry: sessions, channels, messages in/out per
 * second, heap, RSS and event-loop lag. Message rates come from the sessions' own
 * counters (open sessions summed at each sample, plus what closed sessions had), so the
 * hot path pays nothing for them; the sample is O(sessions), once a second.
 */
export class StatsCollector {
  /** Drift of a 100 ms timer: how late the loop got to it. */
  private readonly loopTimer: NodeJS.Timeout;
  private loopExpected = performance.now() + LAG_TICK_MS;
  private worstLagMs = 0;
  private closedIn = 0;
  private closedOut = 0;
  private lastIn = 0;
  private lastOut = 0;
  private lastAt = performance.now();

  constructor() {
    this.loopTimer = setInterval(() => {
      const now = performance.now();
      this.worstLagMs = Math.max(this.worstLagMs, now - this.loopExpected);
      this.loopExpected = now + LAG_TICK_MS;
    }, LAG_TICK_MS);
    this.loopTimer.unref();
  }

  /** Keeps a closing session's counts in the totals (call from the hub observer). */
  sessionClosed(session: Session): void {
    this.closedIn += session.messagesIn;
    this.closedOut += session.messagesOut;
  }

  /** Messages in and out since start, of open and closed sessions. O(sessions). */
  totals(hub: Hub<Session> | null): WorkerTotals {
    let messagesIn = this.closedIn;
    let messagesOut = this.closedOut;
    if (hub !== null) {
      for (const s of hub.sessions.values()) {
        messagesIn += s.messagesIn;
        messagesOut += s.messagesOut;
      }
    }
    return { messagesIn, messagesOut };
  }

  /**
   * The figures since the previous sample; `hub` is null before the node started; `peers`:
   * open links to other workers; `refused`: the node's flood-limit refusals so far;
   * `undeliverable`: the bus's total of dropped records from other processes; `forwarded`:
   * connections it passed to the agent at its share (`--accept shared`).
   */
  sample(hub: Hub<Session> | null, peers = 0, refused: Record<string, number> = {}, undeliverable = 0, forwarded = 0): WorkerStats {
    const totals = this.totals(hub);
    const totalIn = totals.messagesIn;
    const totalOut = totals.messagesOut;
    const now = performance.now();
    const secs = Math.max(0.001, (now - this.lastAt) / 1000);
    // One read of the process's memory (memoryUsage() reads the RSS too; .rss() again was a second /proc read).
    const memory = process.memoryUsage();
    const stats: WorkerStats = {
      sessions: hub?.sessions.size ?? 0,
      channels: hub?.channels.size ?? 0,
      messagesInPerSec: Math.max(0, Math.round((totalIn - this.lastIn) / secs)),
      messagesOutPerSec: Math.max(0, Math.round((totalOut - this.lastOut) / secs)),
      heapUsedBytes: memory.heapUsed,
      rssBytes: memory.rss,
      loopLagMs: Math.round(Math.max(this.worstLagMs, performance.now() - this.loopExpected, 0) * 100) / 100,
      peers,
      refused: { ...refused },
      undeliverable,
      forwarded,
      totals
    };
    this.lastIn = totalIn;
    this.lastOut = totalOut;
    this.lastAt = now;
    this.worstLagMs = 0;
    return stats;
  }

  close(): void {
    clearInterval(this.loopTimer);
  }
}
