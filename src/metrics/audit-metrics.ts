import { Histogram, type Registry } from 'prom-client';
import type { AuditSink } from '../audit/audit-sink.js';
import { AuditWriter } from '../audit/audit-writer.js';
import { gaugeAtScrape } from './read-at-scrape.js';

/** Buckets of `zenconn_audit_commit_seconds`: a SQLite commit takes well under 1 ms, a PostgreSQL one a few. */
export const AUDIT_COMMIT_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The audit trail's figures of one process (a node's writer, or an agent's own, which
 * records what a dead worker cannot): the queue and the journal read when scraped, the
 * commit time observed once per group commit. A sink that is no writer (`--no-audit`)
 * shows zeros.
 */
export function addAuditMetrics(r: Registry, audit: AuditSink | null): void {
  const writer = audit instanceof AuditWriter ? audit : null;
  gaugeAtScrape(r, 'zenconn_audit_queue_rows', 'Audit rows recorded and not yet durable (queued or retried).', [], (set) => {
    const s = writer?.stats();
    set({}, s === undefined ? 0 : s.queued + s.held);
  });
  gaugeAtScrape(r, 'zenconn_audit_journal_bytes', "Bytes in this process's audit journal file.", [], (set) => set({}, writer?.stats().journalBytes ?? 0));
  const commits = new Histogram({
    name: 'zenconn_audit_commit_seconds',
    help: 'Time of one audit group commit (a database transaction or a journal append).',
    buckets: [...AUDIT_COMMIT_BUCKETS],
    registers: [r]
  });
  if (writer !== null) writer.onCommit = (seconds) => commits.observe(seconds);
}
