// PLACEHOLDER until the audit writer lands (the audit engineer replaces this file):
// the trail is not recorded yet.
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import type { Config } from '../config/options.js';
import { NullAuditSink, type AuditSink } from './audit-sink.js';

export async function createAuditSink(_o: { store: Store; serverId: string; config: Readonly<Config>; logger: Logger }): Promise<AuditSink> {
  return new NullAuditSink();
}
