import type { Position } from '../protocol/frames.js';
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { IpcBatcher } from './ipc-batcher.js';
import type { AgentItem } from './ipc-messages.js';
import type { WorkerState } from './registry.js';
import type { RouteTarget } from './bus-router.js';
import { sendSocketHandle } from './socket-handle.js';

/** Batches to one worker not yet written to its pipe above which deliveries to it are dropped. */
export const MAX_UNSENT_TO_WORKER_BATCHES = 4096;

/** One worker process, as the agent drives it: its lifecycle, its load, and its batch. */
export class WorkerHandle implements RouteTarget {
  state: WorkerState = 'starting';
  serverId: string | null = null;
  lastSeen = Date.now();
  readonly startedAt = Date.now();
  /** Connections handed over and not yet settled (placement counts them as load). */
  inflight = 0;
  /** The agent asked it to stop (rolling restart, drain): its exit is not a crash. */
  expectedExit = false;
  killed = false;
  exited = false;
  /** Deliveries dropped because it had stopped reading (see MAX_UNSENT_TO_WORKER_BATCHES). */
  dropped = 0;
  /** What goes to it with the agent's next flush turn (remote counts lead). */
  readonly batcher: IpcBatcher<AgentItem>;
  private readonly readyWaiters: Array<(ok: boolean) => void> = [];
  private readonly exitWaiters: Array<() => void> = [];
  private readonly settleWaiters: Array<() => void> = [];
  releasedWaiter: (() => void) | null = null;

  constructor(
    readonly key: number,
    readonly slot: number,
    readonly child: ChildProcess,
    /** Puts this worker in the agent's next flush turn. */
    private readonly markDirty: (h: WorkerHandle) => void
  ) {
    this.batcher = new IpcBatcher<AgentItem>(
      {
        writable: () => !this.exited && this.child.connected,
        send: (batch, written) => this.child.send(batch, written)
      },
      (channel, count) => ({ t: 'remote', channel, count })
    );
  }

  deliver(payload: Uint8Array, position?: Position): void {
    if (this.batcher.unsentBatches >= MAX_UNSENT_TO_WORKER_BATCHES) {
      this.dropped++;
      return;
    }
    this.batcher.push(position === undefined ? { t: 'deliver', payload } : { t: 'deliver', payload, offset: position.offset, epoch: position.epoch }, 'message');
    this.markDirty(this);
  }

  setRemote(channel: string, count: number): void {
    this.batcher.setCount(channel, count);
    this.markDirty(this);
  }

  push(item: AgentItem): void {
    this.batcher.push(item, 'prompt');
    this.markDirty(this);
  }

  whenReady(): Promise<boolean> {
    if (this.state !== 'starting') return Promise.resolve(!this.exited);
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  markReady(): void {
    this.state = 'ready';
    for (const w of this.readyWaiters.splice(0)) w(true);
  }

  /** Hands connection `conn` over (its raw handle, socket-handle.ts); it counts in `inflight` until it settles. */
  handOver(conn: number, socket: Socket): void {
    this.inflight++;
    sendSocketHandle(this.child.send.bind(this.child), { t: 'conn', conn }, socket, () => this.settleOne());
  }

  /** One handed-over connection settled (or never got there). */
  settleOne(): void {
    if (this.inflight > 0) this.inflight--;
    if (this.inflight === 0) for (const w of this.settleWaiters.splice(0)) w();
  }

  /** Resolves once no handed-over connection is pending, the worker exited, or after `timeoutMs`. */
  whenSettled(timeoutMs: number): Promise<void> {
    if (this.inflight === 0 || this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        const i = this.settleWaiters.indexOf(done);
        if (i >= 0) this.settleWaiters.splice(i, 1);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.settleWaiters.push(done);
    });
  }

  whenExited(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  markExited(): void {
    this.exited = true;
    for (const w of this.readyWaiters.splice(0)) w(false);
    for (const w of this.exitWaiters.splice(0)) w();
    for (const w of this.settleWaiters.splice(0)) w();
  }
}
