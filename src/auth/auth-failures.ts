import { ZenError } from '../errors.js';
import { InvalidTokenError } from './tokens.js';

/** Why a request or upgrade was refused for its credentials. */
export type AuthFailureReason = 'missing' | 'invalid' | 'expired' | 'forbidden';

/**
 * Refusals for credentials of one process since it started (WebSocket upgrades and the
 * token-guarded HTTP routes), by reason: plain fields, read by the metrics when scraped.
 */
export class AuthFailures {
  readonly counts: Record<AuthFailureReason, number> = { missing: 0, invalid: 0, expired: 0, forbidden: 0 };

  /** Counts `err` when it is a refusal for credentials (401 or 403 of the token guard); ignores anything else. */
  count(err: unknown): void {
    const reason = authFailureReason(err);
    if (reason !== null) this.counts[reason]++;
  }
}

/** The reason of an authentication or authorization error; null for any other error. */
export function authFailureReason(err: unknown): AuthFailureReason | null {
  if (err instanceof InvalidTokenError) return err.expired ? 'expired' : 'invalid';
  if (!(err instanceof ZenError)) return null;
  switch (err.code) {
    case 'ERR_AUTH_TOKEN_MISSING':
      return 'missing';
    case 'ERR_AUTH_TOKEN_INVALID':
      return 'invalid';
    case 'ERR_AUTH_FORBIDDEN':
      return 'forbidden';
    default:
      return null;
  }
}
