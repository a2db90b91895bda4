import { randomBytes } from 'node:crypto';
import type { Position } from '../protocol/frames.js';
import { sliceWindow } from './channel-log.js';

/** A new epoch: 12 random hex digits, unique per sequence start. */
export function newEpoch(): string {
  return randomBytes(6).toString('hex');
}

/** One kept item and its position. */
export interface Kept<T> {
  offset: number;
  /** Epoch ms it was appended. */
  at: number;
  item: T;
}

interface Sequence<T> {
  offset: number;
  epoch: string;
  /** The hot window, oldest first; `head` is its first live index (amortized shift). */
  kept: Array<Kept<T>>;
  head: number;
  /** Epoch ms of the last append (or of the creation). */
  touched: number;
}

/** The options of a MemoryLog. */
export interface MemoryLogOptions {
  /** Events kept per channel (`--history-size`); 0 keeps none. */
  size: number;
  /** How long an event is kept (`--history-ttl-ms`). */
  ttlMs: number;
  now?: () => number;
}

/**
 * Per-channel sequences and hot windows in one process's memory: the sequencer of
 * `serve` alone (items are event frames) and of an agent (items are the serialized
 * messages). Bounded: at most `size` items per channel, none older than `ttlMs`; a
 * channel without an event for `ttlMs` is forgotten (its next event starts a new epoch,
 * which tells clients honestly that its sequence restarted).
 */
export class MemoryLog<T> {
  private readonly seqs = new Map<string, Sequence<T>>();
  private readonly size: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: MemoryLogOptions) {
    this.size = options.size;
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(this.ttlMs, 60000)));
    this.sweeper.unref();
  }

  /** Channels with a sequence now. */
  get channels(): number {
    return this.seqs.size;
  }

  /** Gives `item` the next position of `channel` and keeps it in the window. */
  append(channel: string, item: T): Position {
    const now = this.now();
    const s = this.sequence(channel, now);
    const offset = ++s.offset;
    s.touched = now;
    if (this.size > 0) {
      s.kept.push({ offset, at: now, item });
      if (s.kept.length - s.head > this.size) s.head++;
      this.trim(s, now);
    }
    return { offset, epoch: s.epoch };
  }

  /** The kept items after `since` (see ChannelLog.read), with the latest position. */
  read(channel: string, since: Position | null, limit: number): { items: Array<Kept<T>>; offset: number; epoch: string; complete: boolean } {
    const now = this.now();
    const s = this.sequence(channel, now);
    this.trim(s, now);
    const window = s.head === 0 ? s.kept : s.kept.slice(s.head);
    const { items, complete } = sliceWindow(window, s.offset, s.epoch, since, limit);
    return { items, offset: s.offset, epoch: s.epoch, complete };
  }

  close(): void {
    clearInterval(this.sweeper);
    this.seqs.clear();
  }

  private sequence(channel: string, now: number): Sequence<T> {
    let s = this.seqs.get(channel);
    if (s === undefined) {
      s = { offset: 0, epoch: newEpoch(), kept: [], head: 0, touched: now };
      this.seqs.set(channel, s);
    }
    return s;
  }

  /** Drops what is past the TTL, and compacts the array once half of it is dead. */
  private trim(s: Sequence<T>, now: number): void {
    const oldest = now - this.ttlMs;
    while (s.head < s.kept.length && s.kept[s.head].at < oldest) s.head++;
    if (s.head > 0 && s.head * 2 >= s.kept.length) {
      s.kept = s.kept.slice(s.head);
      s.head = 0;
    }
  }

  private sweep(): void {
    const oldest = this.now() - this.ttlMs;
    for (const [channel, s] of this.seqs) if (s.touched < oldest) this.seqs.delete(channel);
  }
}
