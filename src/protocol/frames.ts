/**
 * The ZenConn protocol's messages, independent of their encoding.
 * Field names and values are a contract with existing clients: see docs/protocol.md.
 */

/** Client → server. */
export type ClientFrame =
  | { type: 'subscribe'; channel: string; token?: string }
  | { type: 'unsubscribe'; channel: string }
  | { type: 'broadcast'; channel: string; data: unknown };

/** The user a session belongs to, as carried by joined/left notices. */
export interface MemberInfo {
  session: string;
  user: string | null;
}

/** Server → client. Ids (session, from, id) are UUID strings in canonical form. */
export type ServerFrame =
  | { type: 'accepted'; data: string }
  | { type: 'subscribed'; channel: string }
  | { type: 'unauthorized'; channel: string }
  | { type: 'unsubscribed'; channel: string }
  | { type: 'received'; channel: string; count: number }
  | { type: 'event'; channel: string; data: unknown; from: string | null; id: string }
  | { type: 'joined'; channel: string; data: MemberInfo }
  | { type: 'left'; channel: string; data: MemberInfo }
  | { type: 'error'; channel: string; errors: string[] };

/** A frame the decoder rejected: answered with an `error` frame, the session stays open. */
export interface DecodeFailure {
  /** The offending frame's channel when it names a string one, otherwise `*`. */
  channel: string;
  errors: string[];
}

/** Binary protocol kinds (first element of every array). */
export const Kind = {
  accepted: 0,
  subscribe: 1,
  subscribed: 2,
  unauthorized: 3,
  unsubscribe: 4,
  unsubscribed: 5,
  broadcast: 6,
  received: 7,
  event: 8,
  joined: 9,
  left: 10,
  error: 11
} as const;

/** Longest channel name accepted. */
export const MAX_CHANNEL_LENGTH = 200;
/** Allowed channel characters: A-Z a-z 0-9 _ - . : @ = , ; */
export const CHANNEL_RE = /^[A-Za-z0-9_\-.:@=,;]{1,200}$/;
/** The prefix that makes a channel private. */
export const PRIVATE_PREFIX = 'private.';
/** The channel name that means "every session" (broadcast only). */
export const ALL_CHANNEL = '*';
