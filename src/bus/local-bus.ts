import type { Bus, BusMessage } from './bus.js';

/** The bus of a single process: nothing is elsewhere. */
export class LocalBus implements Bus {
  readonly ready = true;
  publish(_message: BusMessage): boolean {
    return true;
  }
  remoteCount(_channel: string): number {
    return 0;
  }
  setLocalCount(_channel: string, _count: number): void {}
  whenSubscribed(_channel: string): null {
    return null;
  }
  onMessage(_handler: (message: BusMessage) => void): () => void {
    return () => {};
  }
  async close(): Promise<void> {}
}
