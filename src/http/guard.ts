/**
 * The HTTP API's guard: the bearer token of a request (header or `access_token`) and
 * the grant it must hold. Every API route (broadcast, audit, agent) goes through it.
 */
import type { IncomingMessage } from 'node:http';
import { ZenError } from '../errors.js';
import type { Grant, Identity } from '../auth/grants.js';
import { bearerToken, type TokenVerifier } from '../auth/tokens.js';

/** Resolves the bearer identity of an HTTP API request. Throws 401 (no/bad token). */
export async function identify(req: IncomingMessage, url: URL, verifier: TokenVerifier): Promise<Identity> {
  const token = bearerToken(req.headers.authorization, url.searchParams);
  if (token === null) throw new ZenError('ERR_AUTH_TOKEN_MISSING');
  return verifier.verify(token);
}

/** Throws 403 unless `identity` holds `grant`. */
export function checkGrant(identity: Identity, grant: Grant): void {
  if (!identity.grants.has(grant)) throw new ZenError('ERR_AUTH_FORBIDDEN', grant);
}

/** Told of a request refused for its token or grant (401/403): the user when the token was valid. */
export type OnRefused = (req: IncomingMessage, err: ZenError, userId: string | null) => void;

/**
 * Resolves the bearer identity of an HTTP API request and checks it holds `grant`.
 * Throws 401 (no/bad token) or 403 (grant missing), after telling `onRefused`.
 */
export async function requireGrant(req: IncomingMessage, url: URL, verifier: TokenVerifier, grant: Grant, onRefused?: OnRefused): Promise<Identity> {
  let identity: Identity | null = null;
  try {
    identity = await identify(req, url, verifier);
    checkGrant(identity, grant);
    return identity;
  } catch (err) {
    if (err instanceof ZenError) onRefused?.(req, err, identity?.userId ?? null);
    throw err;
  }
}
