import type { Socket } from 'node:net';
import { SYNC_TIMEOUT_MS, type IpcPort } from './ipc-port.js';
import { IpcBatcher, type Urgency } from './ipc-batcher.js';
import type { AgentAnswer, AgentItem, AgentMessage, AgentQuery, ForwardMessage, MetricsQuery, WorkerInit, WorkerItem } from './ipc-messages.js';
import type { NativeHandle } from './shared-port.js';
import { sendSocketHandle, socketFromHandle } from './socket-handle.js';

/** The IPC side of a process (`process` in a forked worker); a fake in unit tests. */
export interface IpcProcess {
  send?: (message: never, sendHandle?: undefined, options?: undefined, callback?: (err: Error | null) => void) => boolean;
  readonly connected?: boolean;
  on(event: 'message', listener: (message: unknown, handle?: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
}

/** Batches to the agent not yet written to the pipe above which `publish` items are refused (the agent is not reading). */
export const MAX_UNSENT_TO_AGENT_BATCHES = 4096;
/** Agent requests (for HTTP answers) waiting at once; beyond it a request is answered 503 at once. */
export const MAX_PENDING_REQUESTS = 256;
/** How long a request waits for the agent's answer. */
export const REQUEST_TIMEOUT_MS = 5000;

/** Items that nothing waits on (REGISTRY_COALESCE_MS in ipc-batcher.ts). */
const REGISTRY_ITEMS: ReadonlySet<WorkerItem['t']> = new Set(['open', 'close', 'sub', 'unsub', 'settled', 'stats']);

/**
 * A worker's end of the IPC channel to its agent. Queued items go out as one `batch`,
 * as soon as the most urgent of them asks (ipc-batcher.ts, shared with the agent's end):
 * - prompt (a sync, a request, an answer, a place freed, the lifecycle): at the end of
 *   the turn (`process.nextTick`), before the turn's socket writes (uncorked on
 *   setImmediate);
 * - registry (sessions opened, closed, subscribed; counts, coalesced per channel and
 *   leading the batch; stats): within REGISTRY_COALESCE_MS, so a connect burst costs
 *   the agent one wake-up per few milliseconds, not one per session. The agent's view
 *   (presence, the dashboard, placement) lags by that much; routing does not, since a
 *   member is in effect only once a prompt `sync` that follows its count was answered;
 * - messages (`publish`, `sequence`): PUBLISH_COALESCE_MS after the previous batch.
 */
export class AgentLink implements IpcPort {
  private readonly batcher: IpcBatcher<WorkerItem>;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private dropped = 0;
  private nextRequestId = 1;
  private readonly pending = new Map<number, { resolve: (a: AgentAnswer) => void; timer: NodeJS.Timeout }>();
  private readonly syncs = new Map<number, (confirmed: boolean) => void>();
  private syncTimer: NodeJS.Timeout | null = null;
  /** Syncs sent before the last sweep: resolved by the next one if still unanswered. */
  private syncsSeen = 0;
  /** Items that came before `onItem` (a batch can follow `init` in the same read). */
  private earlyItems: AgentItem[] | null = [];
  private itemHandler: (item: AgentItem) => void = (item) => this.earlyItems?.push(item);
  private connHandler: (conn: number, socket: Socket) => void = (_c, s) => s.destroy();
  private listenHandler: (handle: NativeHandle) => void = () => undefined;
  /** Links that came before `onPeer` (they follow `init` at once). */
  private earlyPeers: Array<[number, Socket]> | null = [];
  private peerHandler: (key: number, socket: Socket) => void = (k, s) => this.earlyPeers?.push([k, s]);
  private initWaiter: ((init: WorkerInit) => void) | null = null;
  private initMessage: WorkerInit | null = null;

  constructor(private readonly proc: IpcProcess) {
    this.batcher = new IpcBatcher<WorkerItem>(
      {
        writable: () => this.connected && this.proc.send !== undefined,
        // A closed channel throws here: the 'disconnect' handler stops the worker.
        send: (batch, written) => this.proc.send!(batch as never, undefined, undefined, written)
      },
      (channel, count) => ({ t: 'count', channel, count })
    );
    proc.on('message', (message, handle) => this.onMessage(message as AgentMessage, handle));
  }

  get connected(): boolean {
    return this.proc.connected === true;
  }

  /** Batches handed to `process.send` so far. */
  get writes(): number {
    return this.batcher.written;
  }

  /** Batches handed to `process.send` and not yet written to the pipe. */
  get unsentBatches(): number {
    return this.batcher.unsentBatches;
  }

  /** Publish items refused because the agent was not reading (see MAX_UNSENT_TO_AGENT_BATCHES). */
  get droppedPublishes(): number {
    return this.dropped;
  }

  /** Resolves with the agent's `init` message. */
  init(): Promise<WorkerInit> {
    if (this.initMessage) return Promise.resolve(this.initMessage);
    return new Promise((resolve) => (this.initWaiter = resolve));
  }

  /** Handles every item the agent sends (after `init`). */
  onItem(handler: (item: AgentItem) => void): void {
    this.itemHandler = handler;
    const early = this.earlyItems ?? [];
    this.earlyItems = null;
    for (const item of early) handler(item);
  }

  /** Listens on the agent's shared port (`--accept shared`). */
  onListen(handler: (handle: NativeHandle) => void): void {
    this.listenHandler = handler;
  }

  /**
   * Sends a connection this worker will not serve to the agent to place: its raw handle,
   * so that nothing of it is read on the way (a `net.Socket` would start reading where it
   * lands). This process's copy closes once the message is written.
   */
  forward(socket: Socket): void {
    sendSocketHandle(this.connected ? this.proc.send?.bind(this.proc) : undefined, { t: 'forward' } satisfies ForwardMessage, socket);
  }

  /** Handles each connection the agent hands over. */
  onConnection(handler: (conn: number, socket: Socket) => void): void {
    this.connHandler = handler;
  }

  /** Handles each direct link to another worker that the agent hands over. */
  onPeer(handler: (key: number, socket: Socket) => void): void {
    this.peerHandler = handler;
    const early = this.earlyPeers ?? [];
    this.earlyPeers = null;
    for (const [key, socket] of early) handler(key, socket);
  }

  /** Queues an item; its urgency is its kind's (see the class comment) unless given. */
  send(item: WorkerItem, urgency?: Urgency): boolean {
    // Channel messages (`publish`, and `sequence`: events the agent sequences) are bounded and coalesced.
    const message = item.t === 'publish' || item.t === 'sequence';
    if (message && this.batcher.unsentBatches >= MAX_UNSENT_TO_AGENT_BATCHES) {
      this.dropped++;
      return false;
    }
    this.batcher.push(item, urgency ?? (message ? 'message' : REGISTRY_ITEMS.has(item.t) ? 'registry' : 'prompt'));
    this.schedule();
    return true;
  }

  setCount(channel: string, count: number): void {
    this.batcher.setCount(channel, count);
    this.schedule();
  }

  /**
   * Asks the agent to confirm that it routes `channel` here. Resolves true with its
   * answer; false after SYNC_TIMEOUT_MS to 2×SYNC_TIMEOUT_MS (one sweep timer for all of
   * them) or at once when the agent is gone.
   */
  sync(channel: string): Promise<boolean> {
    if (!this.connected) return Promise.resolve(false);
    const id = this.nextRequestId++;
    return new Promise((resolve) => {
      this.syncs.set(id, resolve);
      this.send({ t: 'sync', id, channel });
      if (this.syncTimer === null) {
        this.syncsSeen = id;
        this.syncTimer = setInterval(this.sweepSyncs, SYNC_TIMEOUT_MS);
        this.syncTimer.unref();
      }
    });
  }

  private readonly sweepSyncs = (): void => {
    for (const [id, resolve] of this.syncs) {
      if (id > this.syncsSeen) break;
      this.syncs.delete(id);
      resolve(false);
    }
    this.syncsSeen = this.nextRequestId - 1;
    if (this.syncs.size === 0 && this.syncTimer !== null) {
      clearInterval(this.syncTimer);
      this.syncTimer = null;
    }
  };

  /** Asks the agent; resolves with its answer (503 when it does not answer in time). */
  request(query: AgentQuery | MetricsQuery): Promise<AgentAnswer> {
    if (!this.connected || this.pending.size >= MAX_PENDING_REQUESTS) {
      return Promise.resolve({ status: 503, body: { error: 'agent unavailable' } });
    }
    const id = this.nextRequestId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ status: 503, body: { error: 'agent did not answer' } });
      }, REQUEST_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve, timer });
      this.send({ t: 'request', id, query });
    });
  }

  /** Writes what is queued now (normally done at the end of the turn). */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.batcher.flush();
  };

  /** Fails every pending request (the agent is gone). */
  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ status: 503, body: { error: 'agent unavailable' } });
    }
    this.pending.clear();
    if (this.syncTimer !== null) clearInterval(this.syncTimer);
    this.syncTimer = null;
    for (const resolve of this.syncs.values()) resolve(false);
    this.syncs.clear();
  }

  /** The turn's flush, unless an explicit `flush()` already sent the batch. */
  private readonly onTick = (): void => {
    if (this.scheduled) this.flush();
  };

  private schedule(): void {
    if (this.scheduled) return;
    const wait = this.batcher.waitMs();
    if (wait <= 0) {
      this.scheduled = true;
      process.nextTick(this.onTick);
    } else if (this.timer === null) {
      this.timer = setTimeout(this.flush, wait);
    }
  }

  private onMessage(message: AgentMessage, handle: unknown): void {
    switch (message.t) {
      case 'init':
        this.initMessage = message;
        this.initWaiter?.(message);
        this.initWaiter = null;
        return;
      case 'conn':
        if (handle) this.connHandler(message.conn, socketFromHandle(handle, false));
        return;
      case 'peer':
        if (handle) this.peerHandler(message.key, handle as Socket);
        return;
      case 'listen':
        if (handle) this.listenHandler(handle as NativeHandle);
        return;
      case 'batch':
        for (const item of message.items) {
          if (item.t === 'synced') {
            this.syncs.get(item.id)?.(true);
            this.syncs.delete(item.id);
          } else if (item.t === 'response') {
            const p = this.pending.get(item.id);
            if (p === undefined) continue;
            this.pending.delete(item.id);
            clearTimeout(p.timer);
            p.resolve(item.answer);
          } else {
            this.itemHandler(item);
          }
        }
        return;
    }
  }
}
