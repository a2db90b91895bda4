import { JournalFile } from '../store/durable/journal-file.js';
import type { AuditRecord } from '../store/store.js';
import { auditJournalCodec } from './audit-journal.js';

/**
 * The last resort of a stopping writer: rows not yet durable are appended to a journal
 * file of their own (the main one may still be closing or being removed), synchronously,
 * with an fdatasync. The file is an orphan once the process is gone: the next start
 * replays it. Throws when the journal cannot be written.
 */
export function writeStopFile(path: string, rows: readonly AuditRecord[]): void {
  const file = JournalFile.open(path, auditJournalCodec);
  try {
    let text = '';
    for (const r of rows) text += file.encode(r);
    file.append(text, rows.length);
    file.syncNow();
  } finally {
    file.close();
  }
}
