/** Tokens the bench signs for zenconn: HS256 with the secret the server was started with. */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';

/** A fresh random secret for one bench run (64 hex characters). */
export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

/**
 * A token for `sub` with `grants` (e.g. `['publish']`), HS256-signed with `secret`,
 * valid for `ttlSeconds` (default 1 hour, longer than any run).
 */
export async function signToken(
  secret: string,
  sub: string,
  grants: readonly string[],
  ttlSeconds = 3600
): Promise<string> {
  return new SignJWT({ grants: [...grants] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}
