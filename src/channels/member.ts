import type { PreparedFrame } from '../transport/transport.js';
import type { Codec } from '../protocol/codec.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { Identity } from '../auth/grants.js';
import type { ChannelSet } from './channel-set.js';

/**
 * What the hub needs of a channel member. The session layer implements it; channels/
 * knows nothing else of sessions, so the import points down (session → channels).
 */
export interface ChannelMember {
  readonly id: string;
  readonly identity: Identity;
  readonly userId: string | null;
  /** Fan-out encodes a frame once per distinct codec among the recipients. */
  readonly codec: Codec;
  /** Only `open` members are written to. */
  readonly state: 'open' | 'closing' | 'closed';
  /** Channels the member is in; the hub adds and deletes. */
  readonly channels: ChannelSet;
  /** The channel whose subscription the bus is confirming; null = none. Set by the hub. */
  subscribing: string | null;
  /** Encodes and sends one frame to this member alone. */
  send(frame: ServerFrame): void;
  /** Writes bytes already encoded with this member's codec. */
  write(frame: PreparedFrame): void;
  /** Holds what is written to and sent by the member until `release`. */
  hold(): void;
  /** Ends the hold: runs `first`, then writes what was held, in order. */
  release(first: () => void): void;
}
