import type { AuditEntry, AuditSink } from '../audit/audit-sink.js';
import type { Position } from '../protocol/frames.js';

/** How long an event's `out` row waits for its position before it is recorded without one. */
export const POSITION_WAIT_MS = 10000;

interface Pending {
  entry: AuditEntry;
  reply: (() => void) | null;
  /** Epoch ms it was published. */
  since: number;
}

/**
 * The `out` event rows of the events whose sequencer is another process (the agent,
 * Redis: docs/architecture.md, Positions). Such a row waits here until the position is
 * known — from the bus's answer or from the event coming back to this process — so that
 * it is recorded once, with its offset and epoch, and history can read it back. The
 * sender's `received` waits for it (it goes out once the row is durable, as for any
 * event). A position that does not come within `waitMs` (the event was lost on the way)
 * or a hub that closes records the row without one: nothing waits forever. One entry
 * per event in flight; one timer for all of them.
 */
export class PendingOutRows {
  private readonly byId = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly audit: AuditSink,
    private readonly waitMs = POSITION_WAIT_MS,
    private readonly now: () => number = Date.now
  ) {}

  get size(): number {
    return this.byId.size;
  }

  /** Holds the row of event `id` (whose `reply` is due once it is durable). */
  add(id: string, entry: AuditEntry, reply: (() => void) | null): void {
    this.byId.set(id, { entry, reply, since: this.now() });
    if (this.timer === null) this.arm();
  }

  /** Drops the row of an event that was not sent after all. */
  cancel(id: string): void {
    this.byId.delete(id);
  }

  /** Event `id` got its position (null: it was lost): its row is recorded now, once. */
  settle(id: string, position: Position | null): void {
    const p = this.byId.get(id);
    if (p === undefined) return;
    this.byId.delete(id);
    if (position !== null) {
      p.entry.offset = position.offset;
      p.entry.epoch = position.epoch;
    }
    this.write(p);
  }

  /** Records every held row as it is (the hub closes). */
  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const p of this.byId.values()) this.write(p);
    this.byId.clear();
  }

  private write(p: Pending): void {
    this.audit.record(p.entry);
    if (p.reply !== null) this.audit.afterDurable(p.reply);
  }

  private arm(): void {
    this.timer = setTimeout(() => this.expire(), this.waitMs);
    this.timer.unref();
  }

  /** Records the rows that waited too long (oldest first: the map keeps insertion order). */
  private expire(): void {
    this.timer = null;
    const oldest = this.now() - this.waitMs;
    for (const [id, p] of this.byId) {
      if (p.since > oldest) break;
      this.byId.delete(id);
      this.write(p);
    }
    if (this.byId.size > 0) this.arm();
  }
}
