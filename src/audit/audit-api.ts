// PLACEHOLDER until the audit API lands (the audit engineer replaces this file).
import type { Store } from '../store/store.js';
import type { TokenVerifier } from '../auth/tokens.js';
import type { RouteHandler } from '../http/router.js';
import { reply } from '../http/respond.js';

export function auditApi(_store: Store, _verifier: TokenVerifier): RouteHandler {
  return (req, res) => reply(req, res, 501, { error: 'audit API not built yet' });
}
