import type { Position } from '../protocol/frames.js';

/** A worker as the bus router sees it: where its deliveries and remote counts are queued. */
export interface RouteTarget {
  readonly key: number;
  /** Queues a serialized `BusMessage` for this worker's members; `position`: the event's, given by the agent. */
  deliver(payload: Uint8Array, position?: Position): void;
  /** Queues the count of `channel`'s members on other nodes (coalesced per turn). */
  setRemote(channel: string, count: number): void;
}

/**
 * The agent's half of the IPC bus: per channel, how many members each worker has, and
 * the routing that follows from it. Workers send their own messages to each other over
 * direct links (peer-link.ts); the agent routes the messages it says itself: the other
 * nodes' (with `--bus`) and the `left` notices of a dead worker's sessions.
 *
 * - `publish` forwards a message to each worker (but `from`) with members of its
 *   channel, once per worker: O(workers) per message, whatever the number of
 *   recipients. `*` is a channel like the others (each worker reports its session
 *   count under it).
 * - The members on other nodes (when the agent is on a Redis bus) are pushed to every
 *   worker. The members on the other workers are not: each worker counts them from
 *   what its peers send over their links (ipc-bus.ts), which is exact for every member
 *   told `subscribed`, where a count relayed by the agent would lag behind.
 * - Memory: one entry per (channel, worker with members); a channel nobody is in
 *   holds nothing.
 */
export class BusRouter {
  private readonly targets = new Map<number, RouteTarget>();
  /** channel → worker key → members (> 0 only). */
  private readonly counts = new Map<string, Map<number, number>>();
  /** worker key → channels it has members in. */
  private readonly channelsOf = new Map<number, Set<string>>();
  /** channel → members on other nodes (the agent's Redis bus), > 0 only. */
  private readonly external = new Map<string, number>();

  /** Adds a worker and tells it the members on other nodes of every channel. */
  addWorker(target: RouteTarget): void {
    this.targets.set(target.key, target);
    this.channelsOf.set(target.key, new Set());
    for (const [channel, n] of this.external) target.setRemote(channel, n);
  }

  /** Removes an exited worker: its members no longer count anywhere. Returns the channels it had members in. */
  removeWorker(key: number): string[] {
    if (!this.targets.delete(key)) return [];
    const channels = this.channelsOf.get(key)!;
    this.channelsOf.delete(key);
    for (const channel of channels) {
      const byWorker = this.counts.get(channel)!;
      byWorker.delete(key);
      if (byWorker.size === 0) this.counts.delete(channel);
    }
    return [...channels];
  }

  /** The members of `channel` on other nodes changed (the agent's Redis bus told it). */
  setExternal(channel: string, count: number): void {
    if ((this.external.get(channel) ?? 0) === count) return;
    if (count > 0) this.external.set(channel, count);
    else this.external.delete(channel);
    for (const target of this.targets.values()) target.setRemote(channel, count);
  }

  /** A worker's member count of `channel` changed. */
  setCount(key: number, channel: string, count: number): void {
    const mine = this.channelsOf.get(key);
    if (mine === undefined) return;
    let byWorker = this.counts.get(channel);
    const before = byWorker?.get(key) ?? 0;
    if (before === count) return;
    if (count > 0) {
      if (byWorker === undefined) {
        byWorker = new Map();
        this.counts.set(channel, byWorker);
      }
      byWorker.set(key, count);
      mine.add(channel);
    } else {
      if (byWorker === undefined) return;
      byWorker.delete(key);
      mine.delete(channel);
      if (byWorker.size === 0) this.counts.delete(channel);
    }
  }

  /**
   * Forwards `payload` to every worker but `from` with members of `channel`.
   * Returns how many workers it went to.
   */
  publish(from: number | null, channel: string, payload: Uint8Array, position?: Position): number {
    const byWorker = this.counts.get(channel);
    if (byWorker === undefined) return 0;
    let n = 0;
    for (const key of byWorker.keys()) {
      if (key === from) continue;
      this.targets.get(key)?.deliver(payload, position);
      n++;
    }
    return n;
  }

  /**
   * Forwards `payload` to worker `key` when it has no members of `channel` (`publish`
   * left it out): the sender of an event learns its position this way. Returns whether it went.
   */
  publishToSender(key: number, channel: string, payload: Uint8Array, position: Position): boolean {
    if (this.counts.get(channel)?.has(key)) return false;
    const target = this.targets.get(key);
    target?.deliver(payload, position);
    return target !== undefined;
  }

  /** Members of `channel` on all workers (not counting other nodes). */
  total(channel: string): number {
    const byWorker = this.counts.get(channel);
    return byWorker === undefined ? 0 : sum(byWorker);
  }

  /** Workers with members of `channel`. */
  workersWith(channel: string): number[] {
    return [...(this.counts.get(channel)?.keys() ?? [])];
  }
}

function sum(byWorker: Map<number, number>): number {
  let n = 0;
  for (const v of byWorker.values()) n += v;
  return n;
}
