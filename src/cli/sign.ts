import type { ParsedArgs } from '../config/load.js';
import { isCanonicalUuid, signChannel } from '../auth/channel-signature.js';
import { ZenError } from '../errors.js';
import { commandFlags } from './command-help.js';
import { configOrExit, fail, stringFlag } from './common.js';

/** `zenconn sign --session ID --channel NAME`: prints a private channel's token. */
export function sign(args: ParsedArgs): void {
  const config = configOrExit(args, commandFlags('sign'));
  const session = stringFlag(args, 'session');
  const channel = stringFlag(args, 'channel');
  if (!session || !channel) fail(new ZenError('ERR_CONFIG_INVALID', 'sign: --session ID and --channel NAME are required'));
  if (!isCanonicalUuid(session)) {
    fail(new ZenError('ERR_CONFIG_INVALID', `sign: --session must be a session id, a canonical UUID (lowercase, hyphenated), got "${session}"`));
  }
  if (!config.channelSecret) fail(new ZenError('ERR_CONFIG_INVALID', 'sign: --channel-secret (or ZENCONN_CHANNEL_SECRET) is required'));
  process.stdout.write(signChannel(config.channelSecret, session, channel) + '\n');
}
