import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The private-channel token: lowercase hex HMAC-SHA256, keyed with the channel secret,
 * of `<session id>@<channel>`. `zenconn sign` prints it for app backends.
 */
export function signChannel(secret: string, sessionId: string, channel: string): string {
  return createHmac('sha256', secret).update(`${sessionId}@${channel}`).digest('hex');
}

/** Checks a token in constant time (for equal lengths; a wrong length is simply false). */
export function verifyChannelSignature(secret: string, sessionId: string, channel: string, token: string): boolean {
  const expected = Buffer.from(signChannel(secret, sessionId, channel), 'latin1');
  const given = Buffer.from(token, 'latin1');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
