/** The rights a token can carry (JWT claim `grants`). */
export type Grant = 'broadcast' | 'publish' | 'private' | 'audit' | 'admin';

/** Every grant zenconn knows; unknown strings in a token are ignored. */
export const GRANTS: readonly Grant[] = ['broadcast', 'publish', 'private', 'audit', 'admin'];

/** Who a session or an HTTP request is. */
export interface Identity {
  /** The token's `sub`, or null for an anonymous session. */
  userId: string | null;
  grants: ReadonlySet<Grant>;
  /** The token's `exp` (seconds since the epoch); null without one (and when anonymous). */
  exp: number | null;
}

/** The identity of a session without a token (the handshake uses this very object). */
export const ANONYMOUS: Identity = Object.freeze({ userId: null, grants: new Set<Grant>(), exp: null });
