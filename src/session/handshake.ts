import type { IncomingMessage } from 'node:http';
import { ZenError } from '../errors.js';
import { ANONYMOUS, type Identity } from '../auth/grants.js';
import { bearerToken, type TokenVerifier } from '../auth/tokens.js';
import type { ProtocolName } from '../protocol/codec.js';
import type { UpgradeDecision } from '../transport/transport.js';
import type { AuthFailures } from '../auth/auth-failures.js';

/** What an accepted upgrade carries into the session. */
export interface HandshakeResult {
  identity: Identity;
  protocol: ProtocolName;
}

export interface HandshakeOptions {
  verifier: TokenVerifier;
  /** Accept requests without a token. */
  anonymous: boolean;
  /** Allowed `Origin` values; empty = any. */
  allowedOrigins: readonly string[];
  /** Counts the refusals for credentials (metrics). Default none. */
  authFailures?: AuthFailures;
}

const SUBPROTOCOLS: Record<string, ProtocolName> = { 'zenconn.bin': 'bin', 'zenconn.json': 'json' };

/**
 * Picks the protocol of an upgrade. In order: `X-Bin-Protocol` / `X-JSON-Protocol`
 * headers (both → 400), `Sec-WebSocket-Protocol: zenconn.bin|zenconn.json` (echoed
 * back), `?protocol=bin|json`; default JSON.
 */
export function chooseProtocol(req: IncomingMessage, query: URLSearchParams): { protocol: ProtocolName; echo?: string } | ZenError {
  const bin = req.headers['x-bin-protocol'] !== undefined;
  const json = req.headers['x-json-protocol'] !== undefined;
  if (bin && json) return new ZenError('ERR_UPGRADE_PROTOCOL_CONFLICT');
  if (bin) return { protocol: 'bin' };
  if (json) return { protocol: 'json' };
  const offered = req.headers['sec-websocket-protocol'];
  if (offered) {
    for (const p of offered.split(',')) {
      const name = p.trim();
      const proto = SUBPROTOCOLS[name];
      if (proto) return { protocol: proto, echo: name };
    }
  }
  const q = query.get('protocol');
  if (q === 'bin' || q === 'json') return { protocol: q };
  if (q !== null) return new ZenError('ERR_HTTP_BAD_REQUEST', 'protocol must be bin or json');
  return { protocol: 'json' };
}

function refusal(err: ZenError): UpgradeDecision<HandshakeResult> {
  const headers: Record<string, string> = err.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
  return { accept: false, status: err.status, body: JSON.stringify({ error: err.message, code: err.code }), headers };
}

/** Decides an upgrade: origin, protocol, then the bearer token (a malformed `Authorization` header is 401). */
export async function decideUpgrade(req: IncomingMessage, o: HandshakeOptions): Promise<UpgradeDecision<HandshakeResult>> {
  if (o.allowedOrigins.length > 0) {
    const origin = req.headers.origin;
    if (origin === undefined || !o.allowedOrigins.includes(origin)) return refusal(new ZenError('ERR_UPGRADE_ORIGIN'));
  }
  const q = req.url!.indexOf('?');
  const query = new URLSearchParams(q === -1 ? '' : req.url!.slice(q + 1));
  const choice = chooseProtocol(req, query);
  if (choice instanceof ZenError) return refusal(choice);
  let identity = ANONYMOUS;
  try {
    const token = bearerToken(req.headers.authorization, query);
    if (token !== null) identity = await o.verifier.verify(token);
    else if (!o.anonymous) {
      const missing = new ZenError('ERR_AUTH_TOKEN_MISSING');
      o.authFailures?.count(missing);
      return refusal(missing);
    }
  } catch (err) {
    const e = err instanceof ZenError ? err : new ZenError('ERR_AUTH_TOKEN_INVALID', String(err));
    o.authFailures?.count(e);
    return refusal(e);
  }
  const decision: UpgradeDecision<HandshakeResult> = { accept: true, context: { identity, protocol: choice.protocol } };
  if (choice.echo) decision.protocol = choice.echo;
  return decision;
}
