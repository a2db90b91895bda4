/**
 * The ZenConn protocol's messages, independent of their encoding.
 * Field names and values are a contract with existing clients: see docs/protocol.md.
 */

/** Client → server. */
export type ClientFrame =
  /** `since`: recover what was missed after this position (docs/protocol.md, Recovery). */
  | { type: 'subscribe'; channel: string; token?: string; since?: Position }
  /** The channel's events after `since` (the latest ones when null), at most `limit` (null: the server's bound). */
  | { type: 'history'; channel: string; since: Position | null; limit: number | null }
  | { type: 'unsubscribe'; channel: string }
  | {
      type: 'broadcast';
      channel: string;
      data: unknown;
      /**
       * Set by both decoders: whether `data` holds a MessagePack `bin` value (a
       * `Uint8Array`). Copy it to the `event` frame's `hasBinary` so the JSON codec can
       * skip its walk for binary values. Never on the wire; ignored by the encoders.
       */
      hasBinary?: boolean;
    }
  /** A fresh bearer token for the session (same `sub`): new grants and a new expiry. */
  | { type: 'refresh'; token: string }
  /** Who is in the channel, on every worker and node (members and `admin` holders may ask). */
  | { type: 'presence'; channel: string };

/** Where an event sits in its channel's sequence (see docs/architecture.md, Positions). */
export interface Position {
  /** Grows by 1 per event on the channel; never reused within an epoch. */
  offset: number;
  /** Changes only when the channel's sequence restarts (its history was lost). */
  epoch: string;
}

/** An `event` frame (the type of `ServerFrame` members with `type: 'event'`). */
export type EventFrame = Extract<ServerFrame, { type: 'event' }>;

/** The user a session belongs to, as carried by joined/left notices. */
export interface MemberInfo {
  session: string;
  user: string | null;
}

/** Server → client. Ids (session, from, id) are UUID strings in canonical form. */
export type ServerFrame =
  | { type: 'accepted'; data: string }
  /**
   * `offset`/`epoch`: where the session starts (the last event before its live ones).
   * `recovered`: only when the subscribe asked `since`, whether the gap was filled.
   */
  | { type: 'subscribed'; channel: string; recovered?: boolean; offset?: number; epoch?: string }
  | { type: 'unauthorized'; channel: string }
  | { type: 'unsubscribed'; channel: string }
  | { type: 'received'; channel: string; count: number }
  | {
      type: 'event';
      channel: string;
      data: unknown;
      from: string | null;
      id: string;
      /**
       * Hint for the JSON codec, never on the wire. `false`: `data` holds no binary value
       * (`Uint8Array`, other ArrayBuffer views, `ArrayBuffer`), so it is stringified as is.
       * `true` or absent: the codec walks `data` and turns each binary value into a
       * base64 string. The binary codec ignores it.
       */
      hasBinary?: boolean;
      /** The event's position on its channel (absent on `*`). */
      offset?: number;
      epoch?: string;
    }
  /** Answer to `history`: `offset`/`epoch` the channel's latest position; `complete`: nothing between `since` and it is missing. */
  | { type: 'history'; channel: string; events: EventFrame[]; offset: number; epoch: string; complete: boolean }
  | { type: 'joined'; channel: string; data: MemberInfo }
  | { type: 'left'; channel: string; data: MemberInfo }
  | { type: 'error'; channel: string; errors: string[] }
  /** A `refresh` was accepted: `exp` is the new token's expiry (seconds), null when it has none. */
  | { type: 'refreshed'; exp: number | null }
  /** Answer to `presence`: at most `--presence-max` members; `truncated` when there were more. */
  | { type: 'presence'; channel: string; members: MemberInfo[]; truncated: boolean };

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
  error: 11,
  refresh: 12,
  refreshed: 13,
  history: 14,
  historyAnswer: 15,
  /** `[16, channel]`: a presence request. */
  presence: 16,
  /** `[17, channel, [[session, user], …]]`, a 4th element `true` when truncated: the presence answer. */
  presenceAnswer: 17
} as const;

/** Largest `limit` a history request may name; the events answered are bounded by `--history-size` and `--recovery-max` too. */
export const MAX_HISTORY_LIMIT = 10000;
/** Longest epoch string accepted in `since`. */
export const MAX_EPOCH_LENGTH = 64;

/**
 * Longest token a `refresh` may carry: Node's default HTTP header limit (16 KiB), so
 * any token that could open a session through `Authorization` can refresh it.
 */
export const MAX_TOKEN_LENGTH = 16384;

/** Longest channel name accepted. */
export const MAX_CHANNEL_LENGTH = 200;
/**
 * A valid channel name: 1 to 200 of A-Z a-z 0-9 _ - . : @ = , ; and not starting with a
 * case variant of `private.` (`Private.x`, `PRIVATE.x`): those would read as private
 * but be public, so they are invalid.
 */
export const CHANNEL_RE = /^(?!(?!private\.)[Pp][Rr][Ii][Vv][Aa][Tt][Ee]\.)[A-Za-z0-9_\-.:@=,;]{1,200}$/;
/** The prefix that makes a channel private. */
export const PRIVATE_PREFIX = 'private.';
/** The channel name that means "every session" (broadcast only). */
export const ALL_CHANNEL = '*';

/**
 * The reasons a decoder puts in `DecodeFailure.errors` (and so in `error` frames).
 * Short, lowercase, stable: clients may match on them (docs/protocol.md lists them).
 */
export const DecodeReason = {
  /** A text frame (or a binary frame on a JSON session) that is not JSON. */
  INVALID_JSON: 'invalid json',
  /** A binary frame that is not exactly one well-formed MessagePack value. */
  INVALID_MSGPACK: 'invalid msgpack',
  /** Well-formed, but not an object (JSON) or not an array (MessagePack). */
  INVALID_FRAME: 'invalid frame',
  /** `type` (JSON) or the kind (MessagePack) is missing or not one a client may send. */
  UNKNOWN_TYPE: 'unknown message type',
  MISSING_CHANNEL: 'missing channel',
  /** Not a string, or not CHANNEL_RE, or `*` outside a broadcast. */
  INVALID_CHANNEL: 'invalid channel',
  /**
   * A subscribe token that is neither absent/null nor a string; a refresh token that is
   * not a string of 1 to MAX_TOKEN_LENGTH characters.
   */
  INVALID_TOKEN: 'invalid token',
  /** A refresh without `token`. */
  MISSING_TOKEN: 'missing token',
  /** A broadcast without `data` (`null` is data). */
  MISSING_DATA: 'missing data',
  /** Containers nested deeper than MAX_DATA_DEPTH inside the frame. */
  DATA_TOO_DEEP: 'data too deep',
  /** A MessagePack ext type other than -1 (timestamp). */
  UNSUPPORTED_EXTENSION: 'unsupported extension type',
  /** A MessagePack map key that is not a string, number, boolean or nil. */
  UNSUPPORTED_MAP_KEY: 'unsupported map key',
  /** A text frame on a binary (MessagePack) session. */
  EXPECTED_BINARY: 'expected a binary frame',
  /** `since` that is not `{offset: integer ≥ 0, epoch: string}` (binary: both elements or neither). */
  INVALID_SINCE: 'invalid since',
  /** A history `limit` that is not an integer from 1 to MAX_HISTORY_LIMIT (or absent/null). */
  INVALID_LIMIT: 'invalid limit'
} as const;

/**
 * Why the server refused a well-formed `refresh` (reasons of its `error` frame, channel
 * `*`). The session keeps its current token; stable strings, listed in docs/protocol.md.
 */
export const RefreshReason = {
  /** The token is past its `exp` (beyond the clock tolerance). */
  EXPIRED: 'token expired',
  /** The token does not verify: bad signature, wrong algorithm, malformed. */
  REJECTED: 'token rejected',
  /** The token verifies but its `sub` is not the session's user. */
  OTHER_USER: 'token for another user',
  /** The session was opened without a token: it has no user to refresh. */
  ANONYMOUS: 'anonymous session'
} as const;

/** One of the DecodeReason strings. */
export type DecodeReasonText = (typeof DecodeReason)[keyof typeof DecodeReason];

/**
 * Deepest container nesting accepted inside a frame's `data` (`[]` and `{}` count 1,
 * a scalar 0). Deeper frames fail with `data too deep`: far below what
 * JSON.stringify and msgpackr can re-encode without exhausting the stack.
 */
export const MAX_DATA_DEPTH = 64;

/** What a codec extracted from a client frame, before validation. */
export interface RawClientFrame {
  /** The frame's type mapped to a client frame type, or null when unknown/missing. */
  type: ClientFrame['type'] | null;
  /** `undefined` when the frame has no channel at all (always for `refresh`). */
  channel: unknown;
  /** The subscribe or refresh token (`undefined`: none). */
  token: unknown;
  hasData: boolean;
  data: unknown;
  hasBinary: boolean;
  /** `since` as sent: JSON `{offset, epoch}`; binary `[offset, epoch]` (nil both: none). */
  since?: unknown;
  /** A history request's `limit` as sent. */
  limit?: unknown;
  /**
   * The decoder already bounded the nesting to MAX_DATA_DEPTH while reading (the socket
   * codecs do, before building anything); otherwise validateClientFrame walks `data`.
   */
  depthChecked?: boolean;
}

/**
 * Whether `value` nests containers (arrays, plain objects) deeper than `limit`. Binary
 * values and Dates count as scalars, as the codecs encode them. Iterative with an
 * explicit stack, so a value nested 500,000 deep is measured without exhausting the
 * call stack; it stops at the first container beyond the limit.
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (!isContainer(value)) return false;
  const stack: Array<{ items: unknown[]; i: number }> = [];
  let items = childrenOf(value);
  let i = 0;
  let depth = 1;
  if (depth > limit) return true;
  for (;;) {
    if (i < items.length) {
      const child = items[i++];
      if (!isContainer(child)) continue;
      if (++depth > limit) return true;
      stack.push({ items, i });
      items = childrenOf(child);
      i = 0;
      continue;
    }
    const up = stack.pop();
    if (up === undefined) return false;
    depth--;
    items = up.items;
    i = up.i;
  }
}

function isContainer(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer) && !(v instanceof Date);
}

function childrenOf(v: object): unknown[] {
  return Array.isArray(v) ? v : Object.values(v);
}

/** The channel a failure reports: the frame's own when it is a string (cut to 200), else `*`. */
export function failureChannel(channel: unknown): string {
  if (typeof channel !== 'string') return ALL_CHANNEL;
  return channel.length > MAX_CHANNEL_LENGTH ? channel.slice(0, MAX_CHANNEL_LENGTH) : channel;
}

/**
 * Validates what a codec extracted and builds the ClientFrame, or a DecodeFailure listing
 * every problem found (channel first, then token or data). Shared by both codecs so they
 * answer the same frame with the same reasons.
 */
export function validateClientFrame(raw: RawClientFrame): ClientFrame | DecodeFailure {
  const { type, channel } = raw;
  if (type === null) return { channel: failureChannel(channel), errors: [DecodeReason.UNKNOWN_TYPE] };
  if (type === 'refresh') return validateRefresh(raw.token);
  let errors: string[] | undefined;
  if (channel === undefined) {
    errors = [DecodeReason.MISSING_CHANNEL];
  } else if (
    typeof channel !== 'string' ||
    !(channel.length <= MAX_CHANNEL_LENGTH && CHANNEL_RE.test(channel)) &&
      !(type === 'broadcast' && channel === ALL_CHANNEL)
  ) {
    errors = [DecodeReason.INVALID_CHANNEL];
  }
  switch (type) {
    case 'subscribe': {
      const token = raw.token;
      if (token !== undefined && token !== null && typeof token !== 'string') {
        (errors ??= []).push(DecodeReason.INVALID_TOKEN);
      }
      const since = readSince(raw.since);
      if (since === false) (errors ??= []).push(DecodeReason.INVALID_SINCE);
      if (errors) return { channel: failureChannel(channel), errors };
      const f: ClientFrame = typeof token === 'string'
        ? { type, channel: channel as string, token }
        : { type, channel: channel as string };
      if (since) f.since = since;
      return f;
    }
    case 'history': {
      const since = readSince(raw.since);
      if (since === false) (errors ??= []).push(DecodeReason.INVALID_SINCE);
      const limit = raw.limit;
      const limitOk = limit === undefined || limit === null || (Number.isInteger(limit) && (limit as number) >= 1 && (limit as number) <= MAX_HISTORY_LIMIT);
      if (!limitOk) (errors ??= []).push(DecodeReason.INVALID_LIMIT);
      if (errors) return { channel: failureChannel(channel), errors };
      return { type, channel: channel as string, since: since === false ? null : since, limit: (limit as number | null | undefined) ?? null };
    }
    case 'unsubscribe':
      if (errors) return { channel: failureChannel(channel), errors };
      return { type, channel: channel as string };
    case 'presence':
      if (errors) return { channel: failureChannel(channel), errors };
      return { type, channel: channel as string };
    case 'broadcast':
      if (!raw.hasData) (errors ??= []).push(DecodeReason.MISSING_DATA);
      // The one depth rule of every entry (socket JSON and binary, HTTP JSON and
      // MessagePack): what passes here can be encoded by every codec and the buses.
      else if (raw.depthChecked !== true && nestedDeeperThan(raw.data, MAX_DATA_DEPTH)) (errors ??= []).push(DecodeReason.DATA_TOO_DEEP);
      if (errors) return { channel: failureChannel(channel), errors };
      return { type, channel: channel as string, data: raw.data, hasBinary: raw.hasBinary };
  }
}

/**
 * `since` as a Position; null when absent (undefined, null, or binary nil+nil); false
 * when malformed. JSON sends `{offset, epoch}`, the binary decoder passes `[offset, epoch]`.
 */
function readSince(v: unknown): Position | null | false {
  if (v === undefined || v === null) return null;
  let offset: unknown;
  let epoch: unknown;
  if (Array.isArray(v)) {
    [offset, epoch] = v as unknown[];
    if ((offset === null || offset === undefined) && (epoch === null || epoch === undefined)) return null;
  } else if (typeof v === 'object') {
    offset = (v as Record<string, unknown>).offset;
    epoch = (v as Record<string, unknown>).epoch;
  } else {
    return false;
  }
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) return false;
  if (typeof epoch !== 'string' || epoch.length > MAX_EPOCH_LENGTH) return false;
  return { offset: offset as number, epoch };
}

/** A refresh concerns the session, not a channel: its failures name `*`, never the token. */
function validateRefresh(token: unknown): ClientFrame | DecodeFailure {
  if (token === undefined) return { channel: ALL_CHANNEL, errors: [DecodeReason.MISSING_TOKEN] };
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    return { channel: ALL_CHANNEL, errors: [DecodeReason.INVALID_TOKEN] };
  }
  return { type: 'refresh', token };
}
