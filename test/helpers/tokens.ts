import { SignJWT } from 'jose';
import { TEST_JWT_SECRET } from './server.js';

/** An HS256 token for tests. `expiresIn` may be negative-ish via an absolute epoch. */
export async function makeToken(sub: string, grants: string[] = [], options: { secret?: string; exp?: number | string } = {}): Promise<string> {
  return new SignJWT({ grants })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '1h')
    .sign(new TextEncoder().encode(options.secret ?? TEST_JWT_SECRET));
}
