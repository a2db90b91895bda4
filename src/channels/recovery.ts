import type { EventFrame } from '../protocol/frames.js';

/** A session joining a channel whose start position is being read (see Hub.subscribe). */
export interface Recovering {
  /** Live events that arrived while reading, in order; null once the replay was sent. */
  buffer: EventFrame[] | null;
  /** The buffer outgrew its bound: its events were dropped (the answer says recovered:false). */
  overflow: boolean;
  /** After the replay: the last offset the session was sent, and its epoch. */
  end: number;
  epoch: string;
}

/**
 * The seam between a replay and the live events, per channel and session. While a
 * session's start position is read, the live events of its channel are kept for it
 * instead of written; once the replay is sent, the kept ones after it follow, and until
 * the first live event beyond the replay arrives, those at or before it are dropped (a
 * read may answer before the delivery of an event it includes). Costs the fan-out one
 * map lookup per event while some session of the process is recovering, none otherwise.
 */
export class RecoveryTable<M> {
  private readonly byChannel = new Map<string, Map<M, Recovering>>();

  constructor(private readonly maxBuffered: number) {}

  get size(): number {
    return this.byChannel.size;
  }

  of(channel: string): Map<M, Recovering> | undefined {
    return this.byChannel.get(channel);
  }

  start(session: M, channel: string): Recovering {
    let m = this.byChannel.get(channel);
    if (m === undefined) {
      m = new Map();
      this.byChannel.set(channel, m);
    }
    const entry: Recovering = { buffer: [], overflow: false, end: 0, epoch: '' };
    m.set(session, entry);
    return entry;
  }

  end(session: M, channel: string): void {
    const m = this.byChannel.get(channel);
    if (m === undefined) return;
    m.delete(session);
    if (m.size === 0) this.byChannel.delete(channel);
  }

  /** Whether `frame` is written to `session` now (false: kept or dropped here). */
  pass(session: M, entry: Recovering, frame: EventFrame): boolean {
    if (entry.buffer !== null) {
      if (entry.buffer.length < this.maxBuffered) entry.buffer.push(frame);
      else {
        entry.overflow = true;
        entry.buffer.length = 0;
        entry.end = frame.offset ?? 0;
        entry.epoch = frame.epoch ?? '';
      }
      return false;
    }
    if (frame.epoch === entry.epoch && (frame.offset ?? 0) <= entry.end) return false;
    this.end(session, frame.channel);
    return true;
  }
}
