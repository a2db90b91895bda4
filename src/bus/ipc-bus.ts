import { serialize, deserialize } from 'node:v8';
import type { Bus, BusMessage } from './bus.js';
import type { WorkerItem } from '../cluster/ipc-messages.js';

/** The worker's end of the IPC channel, as the bus uses it (see cluster/agent-link.ts). */
export interface IpcPort {
  /** Queues an item for the agent (sent with the turn's batch); false = refused (agent gone or not reading). */
  send(item: WorkerItem): boolean;
  /** Reports a member count; the last value of a turn wins. */
  setCount(channel: string, count: number): void;
  /**
   * Resolves true once the agent routes `channel` here (and its nodes do, with `--bus`);
   * false when it could not say (gone, or no answer in time). Never rejects.
   */
  sync(channel: string): Promise<boolean>;
  /** Whether the channel to the agent is open. */
  readonly connected: boolean;
}

/**
 * The bus of a worker: messages go to the agent, which routes each one to every OTHER
 * worker that has members of its channel (every other worker with sessions for `*`),
 * once per worker, never once per recipient — and, with `--bus`, to the other nodes
 * through the agent's own Redis bus, whose messages it routes to its workers alike.
 *
 * - `publish` serializes the message once (v8 structured clone: binary data, dates,
 *   NaN survive) and queues it with the turn's batch; the agent forwards the same bytes
 *   without decoding them.
 * - `setLocalCount` is coalesced per turn and sent ahead of the turn's other items.
 * - `whenSubscribed`: a channel new to this worker is routed here once the agent has
 *   read its count — and, on a Redis bus, once the agent's subscription is acknowledged.
 *   One `sync` round trip per channel newly in use here answers it; a channel already
 *   in use answers null at once.
 * - `remoteCount` is what the agent last pushed: the members on the other workers.
 *   It is eventually consistent: a subscription on another worker counts here a few
 *   milliseconds later (one IPC hop to the agent, one back), so a `received.count`
 *   sent in that window may miss it. Routing does not depend on it: the agent routes
 *   with its own, fresher counts.
 * - Ordering: the channel to the agent is FIFO and so is the agent's channel to each
 *   worker, so messages from one worker reach another in the order they were published.
 * - `publish` refuses (returns false) when the agent is gone, or when it has stopped
 *   reading and MAX_UNSENT_BATCHES batches wait for the pipe: the hub then answers the
 *   sender `bus unavailable`. What was in flight to a worker that dies is lost
 *   (delivery is at most once).
 */
export class IpcBus implements Bus {
  private readonly remote = new Map<string, number>();
  private readonly handlers = new Set<(message: BusMessage) => void>();
  /** Channels with members here (count > 0 reported). */
  private readonly interested = new Set<string>();
  /** Of those, the ones the agent confirmed it routes here. */
  private readonly live = new Set<string>();
  /** Confirmations awaited, per channel. */
  private readonly syncing = new Map<string, Promise<void>>();
  private closed = false;
  private nodesReady = true;

  constructor(private readonly port: IpcPort) {}

  get ready(): boolean {
    return !this.closed && this.port.connected && this.nodesReady;
  }

  publish(message: BusMessage): boolean {
    if (this.closed || !this.port.connected) return false;
    return this.port.send({ t: 'publish', channel: message.channel, payload: serialize(message) });
  }

  remoteCount(channel: string): number {
    return this.remote.get(channel) ?? 0;
  }

  setLocalCount(channel: string, count: number): void {
    if (this.closed) return;
    if (count > 0) this.interested.add(channel);
    else {
      // A confirmation in flight covered the earlier interest, not the next one.
      this.interested.delete(channel);
      this.live.delete(channel);
      this.syncing.delete(channel);
    }
    this.port.setCount(channel, count);
  }

  whenSubscribed(channel: string): Promise<void> | null {
    if (this.closed || !this.port.connected || !this.interested.has(channel) || this.live.has(channel)) return null;
    const pending = this.syncing.get(channel);
    if (pending !== undefined) return pending;
    const p: Promise<void> = this.port.sync(channel).then((confirmed) => {
      if (this.syncing.get(channel) !== p) return;
      this.syncing.delete(channel);
      // Unconfirmed: the next subscriber asks again.
      if (confirmed && this.interested.has(channel)) this.live.add(channel);
    });
    this.syncing.set(channel, p);
    return p;
  }

  onMessage(handler: (message: BusMessage) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** A message routed here by the agent (`deliver`). */
  receive(payload: Uint8Array): void {
    if (this.closed) return;
    const message = deserialize(payload) as BusMessage;
    for (const h of this.handlers) h(message);
  }

  /** The agent's count of `channel`'s members on the other workers (`remote`). */
  setRemoteCount(channel: string, count: number): void {
    if (count > 0) this.remote.set(channel, count);
    else this.remote.delete(channel);
  }

  /** Whether the agent's bus to the other nodes (`--bus`) is ready (`bus-ready`). */
  setNodesReady(ready: boolean): void {
    this.nodesReady = ready;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
  }
}
