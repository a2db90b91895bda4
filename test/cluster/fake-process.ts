import { EventEmitter } from 'node:events';
import type { IpcBatch, WorkerItem } from '../../src/cluster/ipc-messages.js';

/** A process-like IPC endpoint that records what is sent; `hold` keeps send callbacks pending. */
export class FakeProcess extends EventEmitter {
  connected = true;
  hold = false;
  readonly sent: Array<IpcBatch<WorkerItem>> = [];
  private held: Array<() => void> = [];
  send = (message: never, _h?: undefined, _o?: undefined, cb?: (err: Error | null) => void): boolean => {
    this.sent.push(message as IpcBatch<WorkerItem>);
    if (this.hold) this.held.push(() => cb?.(null));
    else cb?.(null);
    return true;
  };
  release(): void {
    for (const f of this.held.splice(0)) f();
  }
  items(): WorkerItem[] {
    return this.sent.flatMap((m) => m.items);
  }
}

/** Resolves after the current turn's ticks and immediates (the batch of the turn is out). */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
