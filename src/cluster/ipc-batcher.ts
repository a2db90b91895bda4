import type { IpcBatch } from './ipc-messages.js';

/**
 * Least time between two batches that hold only messages (publish, deliver). Each write
 * to the pipe wakes the other end: under a stream of broadcasts, gathering a
 * millisecond's worth into one batch costs at most that much latency and saves most of
 * those wake-ups. Registry, count and control items never wait for it.
 */
export const PUBLISH_COALESCE_MS = 1;

/** Where a batcher writes: one end of the IPC channel. */
export interface BatchSink<T> {
  /** Whether a batch can be written now; when not, the batch is dropped (the other end is gone). */
  writable(): boolean;
  /** Writes the batch; `written` runs once it left for the pipe. May throw if the channel closed. */
  send(batch: IpcBatch<T>, written: () => void): void;
}

/**
 * The batch of one end of the IPC channel (a worker's to its agent, the agent's to each
 * worker), in one shape for both: items queued in order, per-channel counts coalesced
 * (the last value wins) and leading the batch, an `urgent` flag for anything but plain
 * messages, the time of the last write for PUBLISH_COALESCE_MS, and the number of
 * batches handed to the pipe and not yet written. When to flush is the owner's call.
 */
export class IpcBatcher<T> {
  private items: T[] = [];
  private readonly counts = new Map<string, number>();
  private urgentPending = false;
  private lastFlushAt = 0;
  private unsent = 0;

  constructor(
    private readonly sink: BatchSink<T>,
    /** The item that carries a coalesced count (it leads the batch). */
    private readonly countItem: (channel: string, count: number) => T
  ) {}

  /** Batches handed to the pipe and not yet written. */
  get unsentBatches(): number {
    return this.unsent;
  }

  /** Whether the pending batch holds more than plain messages (those may wait). */
  get urgent(): boolean {
    return this.urgentPending;
  }

  /** Queues an item; `urgent` ones make the batch go without the coalescing wait. */
  push(item: T, urgent: boolean): void {
    this.items.push(item);
    if (urgent) this.urgentPending = true;
  }

  /** Queues a count; the turn's last value for `channel` wins. Always urgent. */
  setCount(channel: string, count: number): void {
    this.counts.set(channel, count);
    this.urgentPending = true;
  }

  /** How long a batch of messages alone should still wait (0: it may go now). */
  waitMs(now = performance.now()): number {
    if (this.urgentPending) return 0;
    return Math.max(0, this.lastFlushAt + PUBLISH_COALESCE_MS - now);
  }

  /** Writes the pending batch: counts first, then the items in order. */
  flush(): void {
    if (this.items.length === 0 && this.counts.size === 0) return;
    this.urgentPending = false;
    this.lastFlushAt = performance.now();
    const items: T[] = [];
    for (const [channel, count] of this.counts) items.push(this.countItem(channel, count));
    this.counts.clear();
    for (const item of this.items) items.push(item);
    this.items = [];
    if (!this.sink.writable()) return;
    this.unsent++;
    try {
      this.sink.send({ t: 'batch', items }, () => {
        this.unsent--;
      });
    } catch {
      // The channel closed under us: its owner hears of it by its own event.
      this.unsent--;
    }
  }
}

/**
 * The agent's flush turn over all its workers: a worker with something queued is marked
 * dirty, and one `setImmediate` sends each dirty worker its batch. A batch of deliveries
 * alone waits until PUBLISH_COALESCE_MS after that worker's previous one.
 */
export class BatchFlusher<B extends { readonly batcher: IpcBatcher<unknown> }> {
  private readonly dirty = new Set<B>();
  private scheduled = false;

  markDirty(target: B): void {
    this.dirty.add(target);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flushAll(false));
  }

  /** Forgets a target (its process exited). */
  forget(target: B): void {
    this.dirty.delete(target);
  }

  /** Sends each dirty target its batch; `all` sends everything now, waiting or not. */
  flushAll(all = true): void {
    this.scheduled = false;
    const now = performance.now();
    let wait = Infinity;
    for (const target of this.dirty) {
      const left = target.batcher.waitMs(now);
      if (!all && left > 0) {
        wait = Math.min(wait, left);
        continue;
      }
      target.batcher.flush();
      this.dirty.delete(target);
    }
    if (wait !== Infinity && !this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.flushAll(false), wait);
    }
  }
}
