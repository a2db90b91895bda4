import type { WorkerItem } from './ipc-messages.js';

/** How long a `sync` waits for its answer (the agent's, or a peer's) before the subscription is answered anyway. */
export const SYNC_TIMEOUT_MS = 5000;

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
