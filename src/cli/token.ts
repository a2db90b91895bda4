import { SignJWT } from 'jose';
import type { ParsedArgs } from '../config/load.js';
import { GRANTS } from '../auth/grants.js';
import { ZenError } from '../errors.js';
import { commandFlags, flagDefault } from './command-help.js';
import { configOrExit, fail, stringFlag } from './common.js';

/**
 * `zenconn token --sub USER [--grants a,b] [--expires-in 1h]`: mints an HS256 JWT with
 * the configured secret, for development and tests. Production tokens come from the
 * application's own auth service.
 */
export async function token(args: ParsedArgs): Promise<void> {
  const config = configOrExit(args, commandFlags('token'));
  if (!config.jwtSecret) fail(new ZenError('ERR_CONFIG_INVALID', 'token: --jwt-secret (or ZENCONN_JWT_SECRET) is required'));
  const sub = stringFlag(args, 'sub');
  if (!sub) fail(new ZenError('ERR_CONFIG_INVALID', 'token: --sub USER is required'));
  const grants = (stringFlag(args, 'grants') ?? '').split(',').map((g) => g.trim()).filter((g) => g !== '');
  for (const g of grants) if (!(GRANTS as readonly string[]).includes(g)) fail(new ZenError('ERR_CONFIG_INVALID', `token: unknown grant "${g}" (${GRANTS.join(', ')})`));
  const jwt = await new SignJWT({ grants })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(stringFlag(args, 'expires-in') ?? flagDefault('token', 'expires-in'))
    .sign(new TextEncoder().encode(config.jwtSecret));
  process.stdout.write(jwt + '\n');
}
