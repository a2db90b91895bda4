import type { IpcBatch } from './ipc-messages.js';

/**
 * Least time between two batches that hold only messages (publish, deliver). Each write
 * to the pipe wakes the other end: under a stream of broadcasts, gathering a
 * millisecond's worth into one batch costs at most that much latency and saves most of
 * those wake-ups. Registry, count and control items never wait for it.
 */
export const PUBLISH_COALESCE_MS = 1;

/**
 * Longest a registry item (a session opened, closed, subscribed; a count; stats) waits
 * for others to share its write. In a connect burst a worker's sessions each come in a
 * turn of their own: writing each one's items at once costs the agent
 * (and on 2 cores, the worker) a wake-up and a context switch per session, which was
 * most of a handshake's cost through the agent. Nothing waits on these items: whatever
 * must be in effect before a client is told (a member the agent or a peer routes by) is
 * confirmed by a `sync`, which is prompt and takes them along.
 */
export const REGISTRY_COALESCE_MS = 5;

/**
 * How soon a queued item goes: `prompt` at the end of the turn (someone waits on it: a
 * sync, a request, an answer), `registry` within REGISTRY_COALESCE_MS, `message`
 * PUBLISH_COALESCE_MS after the previous batch. When it goes is its owner's loop's call
 * (`waitMs`).
 */
export type Urgency = 'prompt' | 'registry' | 'message';

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
 * (the last value wins, `registry` urgency) and leading the batch, the urgency of what
 * waits (see Urgency), and the number of batches handed to the pipe and not yet
 * written. When to flush is the owner's call (`waitMs`).
 */
export class IpcBatcher<T> {
  private items: T[] = [];
  private readonly counts = new Map<string, number>();
  private promptPending = false;
  /** When the first registry item of the pending batch was queued (-1: none). */
  private registrySince = -1;
  private messagesPending = false;
  private lastFlushAt = 0;
  private unsent = 0;
  private flushes = 0;

  constructor(
    private readonly sink: BatchSink<T>,
    /** The item that carries a coalesced count (it leads the batch). */
    private readonly countItem: (channel: string, count: number) => T
  ) {}

  /** Batches handed to the pipe and not yet written. */
  get unsentBatches(): number {
    return this.unsent;
  }

  /** Batches handed to the pipe so far. */
  get written(): number {
    return this.flushes;
  }

  /** Queues an item; how soon it goes is its urgency's (see Urgency). */
  push(item: T, urgency: Urgency): void {
    this.items.push(item);
    this.note(urgency);
  }

  /** Queues a count; the batch's last value for `channel` wins. Registry urgency. */
  setCount(channel: string, count: number): void {
    this.counts.set(channel, count);
    this.note('registry');
  }

  /** How long the pending batch may still wait (0: it should go now). */
  waitMs(now = performance.now()): number {
    if (this.promptPending) return 0;
    let until = Infinity;
    if (this.registrySince >= 0) until = this.registrySince + REGISTRY_COALESCE_MS;
    if (this.messagesPending) until = Math.min(until, this.lastFlushAt + PUBLISH_COALESCE_MS);
    return until === Infinity ? 0 : Math.max(0, until - now);
  }

  /** Writes the pending batch: counts first, then the items in order. */
  flush(): void {
    if (this.items.length === 0 && this.counts.size === 0) return;
    this.promptPending = false;
    this.registrySince = -1;
    this.messagesPending = false;
    this.lastFlushAt = performance.now();
    const items: T[] = [];
    for (const [channel, count] of this.counts) items.push(this.countItem(channel, count));
    this.counts.clear();
    for (const item of this.items) items.push(item);
    this.items = [];
    this.flushes++;
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

  private note(urgency: Urgency): void {
    if (urgency === 'prompt') this.promptPending = true;
    else if (urgency === 'message') this.messagesPending = true;
    else if (this.registrySince < 0) this.registrySince = performance.now();
  }
}

/**
 * The agent's flush turn over all its workers: a worker with something queued is marked
 * dirty, and one `setImmediate` sends each dirty worker its batch. A batch that may wait
 * (`waitMs`: deliveries alone) waits until its time.
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
