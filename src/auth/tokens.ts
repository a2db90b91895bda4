import { readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, errors as joseErrors } from 'jose';
import { ZenError } from '../errors.js';
import { GRANTS, type Grant, type Identity } from './grants.js';

/** Options of the token verifier. */
export interface TokenVerifierOptions {
  /** HS256 secret. */
  secret: string | null;
  /** Path to a PEM public key (RS256 or ES256, chosen from the key type). */
  publicKeyFile: string | null;
  /** Allowed clock skew in seconds. Default 5. */
  clockToleranceSec?: number;
}

/** A token that does not verify; `expired` tells an expired one from the other faults. */
export class InvalidTokenError extends ZenError {
  constructor(
    reason: string,
    readonly expired: boolean
  ) {
    super('ERR_AUTH_TOKEN_INVALID', reason);
  }
}

/**
 * Verifies bearer JWTs with `jose`: HS256 with the shared secret, or RS256/ES256 with
 * the public key. `exp` is enforced when present; `sub` becomes the user id; `grants`
 * (an array of strings) becomes the identity's grants.
 */
export class TokenVerifier {
  private readonly keys: Array<{ key: Uint8Array | KeyObject; algorithms: string[] }> = [];
  /** Clock skew allowed on `exp`, in seconds (a session's token lasts until exp + this). */
  readonly clockToleranceSec: number;

  constructor(options: TokenVerifierOptions) {
    if (options.secret) this.keys.push({ key: new TextEncoder().encode(options.secret), algorithms: ['HS256'] });
    if (options.publicKeyFile) {
      const key = createPublicKey(readFileSync(options.publicKeyFile));
      const algorithms = key.asymmetricKeyType === 'ec' ? ['ES256'] : ['RS256'];
      this.keys.push({ key, algorithms });
    }
    this.clockToleranceSec = options.clockToleranceSec ?? 5;
  }

  /** Whether any key is configured (otherwise every token is rejected). */
  get configured(): boolean {
    return this.keys.length > 0;
  }

  /**
   * The keys to try: those of the token's own `alg` when one matches, so an expired HS256
   * token is reported as expired rather than as refused by the public key tried last.
   * With no match (or no readable header), every key, and jose says what is wrong.
   */
  private keysFor(token: string): ReadonlyArray<{ key: Uint8Array | KeyObject; algorithms: string[] }> {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return this.keys;
    }
    const matching = this.keys.filter((k) => typeof alg === 'string' && k.algorithms.includes(alg));
    return matching.length > 0 ? matching : this.keys;
  }

  /** Resolves the identity, or rejects with an InvalidTokenError (`ERR_AUTH_TOKEN_INVALID`). */
  async verify(token: string): Promise<Identity> {
    if (this.keys.length === 0) throw new InvalidTokenError('no token key is configured', false);
    let lastError: unknown;
    for (const { key, algorithms } of this.keysFor(token)) {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms, clockTolerance: this.clockToleranceSec });
        const grants = new Set<Grant>();
        if (Array.isArray(payload.grants)) {
          for (const g of payload.grants) if (typeof g === 'string' && (GRANTS as readonly string[]).includes(g)) grants.add(g as Grant);
        }
        return { userId: typeof payload.sub === 'string' ? payload.sub : null, grants, exp: typeof payload.exp === 'number' ? payload.exp : null };
      } catch (err) {
        lastError = err;
      }
    }
    const reason =
      lastError instanceof joseErrors.JWTExpired
        ? 'expired'
        : lastError instanceof joseErrors.JWSSignatureVerificationFailed
          ? 'bad signature'
          : lastError instanceof Error
            ? lastError.message
            : 'unverifiable';
    throw new InvalidTokenError(reason, lastError instanceof joseErrors.JWTExpired);
  }
}

/**
 * The bearer token of a request: `Authorization: Bearer …`, else `?access_token=`.
 * An `Authorization` header of any other shape (`Basic …`, a bare `Bearer`, empty)
 * throws `ERR_AUTH_TOKEN_INVALID` (401): falling back to the query or to an anonymous
 * session would hide the client's mistake.
 */
export function bearerToken(authorization: string | undefined, query: URLSearchParams | null): string | null {
  if (authorization !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) throw new ZenError('ERR_AUTH_TOKEN_INVALID', 'malformed Authorization header (expected "Bearer <token>")');
    return m[1]!;
  }
  return query?.get('access_token') || null;
}
