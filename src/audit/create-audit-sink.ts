import type { Logger } from 'pino';
import type { Config } from '../config/options.js';
import { ZenError } from '../errors.js';
import type { Store } from '../store/store.js';
import { startAuditOffload } from '../store/audit-offload.js';
import type { AuditSink } from './audit-sink.js';
import { AuditWriter } from './audit-writer.js';
import { journalKey } from './audit-journal.js';
import { AuditRetention, parseDurationMs } from './audit-retention.js';
import { AuditBudget } from './audit-budget.js';

/**
 * The audit sink of a node (called by node.ts when `config.audit` is true, after the
 * server's row is registered): a group-commit {@link AuditWriter} on the node's store
 * (with the backend's offload, if it has one: see `startAuditOffload`),
 * with its journal in `auditJournalDir` (orphan journals of this database left by a
 * crash are replayed in the background from here on), with `auditRetention` (unless
 * `off`) the background deletion of older rows, and with `auditMaxBytes` the space budget
 * that refuses broadcasts while the storage is past it. Throws ERR_CONFIG_INVALID for a bad retention.
 */
export async function createAuditSink(o: { store: Store; serverId: string; config: Readonly<Config>; logger: Logger }): Promise<AuditSink> {
  const c = o.config;
  let retentionMs: number | null = null;
  if (c.auditRetention !== null && c.auditRetention !== 'off') {
    retentionMs = parseDurationMs(c.auditRetention);
    if (retentionMs === null || retentionMs <= 0) {
      throw new ZenError('ERR_CONFIG_INVALID', `--audit-retention: expected a duration like 30d, 12h or 90m, got "${c.auditRetention}"`);
    }
  }
  const logger = o.logger.child({ area: 'audit' });
  // SQLite commits on this thread (cheap, and no hop before `received`); a worker thread
  // with its own connection takes the WAL checkpoints (their fsync), retention deletes and
  // the planner statistics off it.
  const offload = startAuditOffload(o.store);
  const writer = new AuditWriter({
    store: o.store,
    asyncWrite: o.store.kind === 'postgres',
    // A SQLite commit is local and cheap; a PostgreSQL one is a network round trip and a
    // remote fsync (milliseconds under load), which the local journal saves the sender.
    ackFrom: c.auditAckFrom === 'auto' ? (o.store.kind === 'postgres' ? 'journal' : 'database') : c.auditAckFrom === 'journal' ? 'journal' : 'database',
    commitsInFlight: c.auditCommitsInFlight,
    serverId: o.serverId,
    durability: c.auditDurability === 'async' ? 'async' : 'ack',
    batchMs: c.auditBatchMs,
    maxQueue: c.auditMaxQueue,
    journalDir: c.auditJournalDir,
    journalKey: journalKey(c.database),
    logger
  });
  writer.start();
  if (retentionMs !== null) {
    const retention = new AuditRetention({
      store: o.store,
      deleteBefore: offload === null ? undefined : (before, limit) => offload.deleteBefore(before, limit),
      maxAgeMs: retentionMs,
      // A short retention is swept more often than once a minute, so rows do not outlive it by much.
      intervalMs: Math.min(60_000, Math.max(250, Math.floor(retentionMs / 4))),
      firstRunMs: Math.min(1000, Math.max(250, Math.floor(retentionMs / 4))),
      logger
    });
    retention.start();
    writer.onClose(() => retention.stop());
  }
  if (c.auditMaxBytes > 0) {
    const budget = new AuditBudget({
      measure: async () => (await o.store.auditBytes()) + writer.stats().journalBytes,
      maxBytes: c.auditMaxBytes,
      intervalMs: c.auditSizeCheckMs,
      logger,
      // The turns are part of the trail: a small `system` row each (the refusals meanwhile are counted, not recorded one by one).
      onChange: (full, bytes, refused) =>
        writer.record({
          messageId: null,
          at: new Date(),
          sessionId: null,
          userId: null,
          direction: 'system',
          type: full ? 'audit.full' : 'audit.resumed',
          channel: null,
          payload: full ? { bytes, maxBytes: c.auditMaxBytes } : { bytes, maxBytes: c.auditMaxBytes, refused },
          recipients: null
        })
    });
    await budget.start();
    writer.budget = budget;
    writer.onClose(() => budget.stop());
  }
  if (offload !== null) writer.onClose(() => offload.close());
  return writer;
}
