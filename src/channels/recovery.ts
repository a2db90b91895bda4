import type { EventFrame, Position } from '../protocol/frames.js';
import type { LogRead } from '../bus/channel-log.js';
import type { ChannelMember } from './member.js';

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

/**
 * Answers `subscribed` with the start position, then the replay (when `since` could
 * be filled), then the live events kept meanwhile that follow it. `r` null: the
 * position could not be read (the sequencer is unreachable): a plain `subscribed`.
 */
export function sendSubscribed<M extends ChannelMember>(table: RecoveryTable<M>, session: M, channel: string, since: Position | null, r: LogRead | null, recoveryMax: number): void {
  const entry = table.of(channel)?.get(session);
  const kept = entry?.buffer ?? [];
  if (r === null || entry === undefined) {
    table.end(session, channel);
    session.send(since === null ? { type: 'subscribed', channel } : { type: 'subscribed', channel, recovered: false });
    for (const f of kept) session.send(f);
  } else {
    let end = r.offset;
    let epoch = r.epoch;
    let replay: EventFrame[] = [];
    let recovered: boolean | undefined;
    if (entry.overflow) {
      end = entry.end;
      epoch = entry.epoch;
      if (since !== null) recovered = false;
    } else if (since !== null) {
      recovered = r.complete && r.epoch === since.epoch && r.events.length <= recoveryMax;
      if (recovered) replay = r.events;
    } else if (kept.length > 0 && kept[0].epoch === epoch && (kept[0].offset ?? 0) <= end) {
      // Events that reached this process since the session joined are its own: it
      // starts before the first of them (the read may have been answered after them).
      end = (kept[0].offset ?? 1) - 1;
    }
    session.send(recovered === undefined ? { type: 'subscribed', channel, offset: end, epoch } : { type: 'subscribed', channel, recovered, offset: end, epoch });
    for (const f of replay) session.send(f);
    for (const f of kept) {
      if (f.epoch === epoch && (f.offset ?? 0) <= end) continue;
      session.send(f);
      end = f.offset ?? end;
      epoch = f.epoch ?? epoch;
    }
    entry.buffer = null;
    entry.end = end;
    entry.epoch = epoch;
  }
}
