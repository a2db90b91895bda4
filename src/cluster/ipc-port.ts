import type { AgentAnswer, AgentQuery, WorkerItem } from './ipc-messages.js';

/** How long a `sync` waits for its answer (the agent's, or a peer's) before the subscription is answered anyway. */
export const SYNC_TIMEOUT_MS = 5000;
/**
 * How long a retiring worker's connections that came in just before have to send their
 * first request before it drains: those the agent handed over (the supervisor waits) and,
 * under `--accept shared`, those it took itself (the worker waits).
 */
export const HANDOFF_SETTLE_MS = 2000;

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
  /** Asks the agent (its answer, or 503 when it cannot); absent on ports without an agent behind (tests). */
  request?(query: AgentQuery): Promise<AgentAnswer>;
  /** Batches written to the agent so far (an item queued since is still unwritten). */
  readonly writes: number;
  /** Whether the channel to the agent is open. */
  readonly connected: boolean;
}
