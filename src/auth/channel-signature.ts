import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * A session id as zenconn makes it: a UUID in canonical form, lowercase and hyphenated.
 * Holding no `@`, it keeps `<session>@<channel>` unambiguous.
 */
const CANONICAL_UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The only token shape accepted: what `signChannel` prints. */
const TOKEN_RE = /^[0-9a-f]{64}$/;

/** Whether `s` is a UUID in canonical form (lowercase, hyphenated). */
export function isCanonicalUuid(s: string): boolean {
  return CANONICAL_UUID_RE.test(s);
}

/**
 * The private-channel token: lowercase hex HMAC-SHA256, keyed with the channel secret,
 * of `<session id>@<channel>`. `zenconn sign` prints it for app backends.
 * Throws a RangeError unless `sessionId` is a canonical UUID: with any other string,
 * `S@private.admin` + `team-7` would sign the same bytes as `S` + `private.admin@team-7`.
 */
export function signChannel(secret: string, sessionId: string, channel: string): string {
  if (!isCanonicalUuid(sessionId)) {
    throw new RangeError(`the session must be a canonical UUID (lowercase, hyphenated), got "${sessionId}"`);
  }
  return createHmac('sha256', secret).update(`${sessionId}@${channel}`).digest('hex');
}

/**
 * Checks a token: exactly 64 lowercase hex characters, compared in constant time as the
 * 32 bytes they encode. Anything else is false, never an exception.
 */
export function verifyChannelSignature(secret: string, sessionId: string, channel: string, token: string): boolean {
  if (!TOKEN_RE.test(token) || !isCanonicalUuid(sessionId)) return false;
  const expected = createHmac('sha256', secret).update(`${sessionId}@${channel}`).digest();
  return timingSafeEqual(Buffer.from(token, 'hex'), expected);
}
