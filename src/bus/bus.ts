import type { MemberInfo, Position, ServerFrame } from '../protocol/frames.js';
import type { ChannelLog } from './channel-log.js';

/**
 * The cross-process seam of the fan-out. A `Bus` carries channel messages to the other
 * processes (workers of an agent, other nodes) that have members of the channel.
 * Implementations: `local-bus.ts` (one process), `ipc-bus.ts` (workers through the
 * agent), `redis-bus.ts` (nodes).
 *
 * Contract:
 * - `publish` sends a message to each other process with members of its channel (every
 *   process for `*`) AT MOST ONCE, never once per recipient, and never back to this
 *   process. Messages from one process arrive in the order they were published.
 *   It returns `true` when the message was sent or is held for sending, `false` when it
 *   was REFUSED: the bus cannot reach the other processes and can hold no more (a
 *   backend that never refuses always returns `true`). The hub answers a refused
 *   broadcast with an `error` frame `bus unavailable` instead of `received`.
 * - `remoteCount` is the members elsewhere, used for `received.count`. It includes
 *   every member whose `whenSubscribed` resolved (or answered null) before it is read:
 *   a bus resolves `whenSubscribed` only once the processes that count have the new
 *   count, for each new member, not only a channel's first. Reading it is O(1).
 * - `setLocalCount` reports this process's member count of a channel (0 = no interest,
 *   so no traffic for it should arrive any more). `*` counts all local sessions.
 * - `whenSubscribed`, asked right after a count grew, tells when that member is in
 *   effect: from then on, a message published anywhere reaches this process and is
 *   counted with it. The hub answers `subscribed` only then, so a client that saw
 *   `subscribed` misses nothing sent after it, and is in its `received.count`,
 *   whichever worker or node the sender is on.
 * - Delivery is at most once: a process that dies loses what was in flight to it.
 */

/** A message for a channel's members: encoded by each receiving process for its sessions. */
export interface BusMessage {
  channel: string;
  frame: ServerFrame;
  /** A session that must not receive it (the sender), or null. */
  exclude: string | null;
  /**
   * Said by the bus itself, not by a process's hub (a vanished node's members leaving):
   * nobody recorded it in the audit trail, so the process that delivers it does.
   */
  announced?: true;
}

export interface Bus {
  /**
   * Sends (or holds) the message; `false` = refused, nothing was sent anywhere. For an
   * event this bus's sequencer positions, `sequenced` may be told the position given
   * (null: the event was lost); a bus may also leave it untold (the event coming back
   * through `onMessage` carries it).
   */
  publish(message: BusMessage, sequenced?: (position: Position | null) => void): boolean;
  remoteCount(channel: string): number;
  setLocalCount(channel: string, count: number): void;
  /**
   * Null when this process's interest in `channel` is already in effect everywhere;
   * otherwise a promise that resolves once it is (or once waiting no longer makes
   * sense: the bus is down or closed — it never rejects).
   */
  whenSubscribed(channel: string): Promise<void> | null;
  /** Registers the handler of messages from other processes; returns its remover. */
  onMessage(handler: (message: BusMessage) => void): () => void;
  /**
   * Present on a bus that assigns the positions of events (docs/architecture.md,
   * Positions): its `publish` of an event on a channel (not `*`) sends it to the
   * sequencer, which gives it its offset and epoch and delivers it through `onMessage`
   * to every process with members of the channel, THIS ONE INCLUDED (the hub then does
   * not fan it out itself), in offset order. The log reads the positions and history.
   */
  readonly log?: ChannelLog;
  /**
   * A member of a PUBLIC channel came (`joined`, once its `subscribed` was sent) or went
   * (`left`), for presence. Private channels' members travel as `joined`/`left`
   * notices through `publish` instead. Optional: a bus that keeps no member lists for
   * the other processes (local, IPC: the agent's registry has them) leaves it out.
   */
  trackMember?(type: 'joined' | 'left', channel: string, member: MemberInfo): void;
  /** Whether the bus can deliver right now (for /readyz). */
  readonly ready: boolean;
  close(): Promise<void>;
}
