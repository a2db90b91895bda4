/**
 * The client's address behind proxies, as Express's `trust proxy` finds it (with the
 * same library, `proxy-addr`): `X-Forwarded-For` is walked from the right, starting at
 * the socket's peer, and every hop that is a trusted proxy is skipped; the first
 * untrusted hop is the client. A client can prepend whatever it likes to the header,
 * but never past a trusted proxy that appended the address it saw.
 */
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { TrustFunction } from '../config/trust-proxy.js';

/** IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as plain IPv4; anything else as it is. */
export function plainAddress(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/**
 * The client's address of `req`: with a trust function, the rightmost untrusted hop of
 * socket peer + `X-Forwarded-For`; without, `socketAddr`. `socketAddr` is the peer's
 * address (a socket whose client has gone no longer reports it, so the caller keeps it).
 */
export function clientAddress(req: IncomingMessage, socketAddr: string, trust: TrustFunction | null): string {
  if (trust === null || req.headers['x-forwarded-for'] === undefined) return plainAddress(socketAddr);
  // proxy-addr reads only the socket's address and the headers.
  const view = { headers: req.headers, socket: { remoteAddress: socketAddr } } as unknown as IncomingMessage;
  return plainAddress(proxyAddr(view, trust));
}
