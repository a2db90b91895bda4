import type { JournalFile } from './journal-file.js';
import type { RetryPolicy } from './retry-policy.js';

/** How {@link replayFile} writes and reports. */
export interface ReplayOptions<T> {
  /** Most records per write. */
  max: number;
  /** Writes records (idempotent: a replay cut short is repeated). */
  write: (items: T[]) => Promise<void>;
  retry: RetryPolicy;
  /** Logged (throttled) when a write fails. */
  failMsg: string;
  /** A line that did not decode. */
  onBad: (line: string) => void;
  /** Checked between writes: true stops the replay, leaving the rest on disk. */
  stopped: () => boolean;
}

/**
 * Copies a journal file's records into their destination from its committed offset,
 * `max` at a time, retrying a failed write with the policy's backoff. Resolves with the
 * records written; `complete` is false when it was stopped first.
 */
export async function replayFile<T>(file: JournalFile<T>, o: ReplayOptions<T>): Promise<{ items: number; complete: boolean }> {
  let items = 0;
  while (!o.stopped()) {
    const read = file.next(o.max, o.onBad);
    if (read === null) return { items, complete: true };
    try {
      await o.write(read.items);
    } catch (err) {
      o.retry.failed(err, o.failMsg);
      await o.retry.backoff();
      continue;
    }
    file.commit(read);
    items += read.items.length;
    o.retry.succeeded();
  }
  return { items, complete: false };
}
