/**
 * The one rule for errors a retry cannot fix: repeating the write would fail the same way,
 * so the faulty record is isolated and set aside instead of blocking the queue.
 *
 * - `RangeError` and `TypeError`: the record itself is malformed (an invalid Date, a value
 *   the driver cannot bind). Both are thrown before anything reaches the database, so
 *   they say nothing about its health.
 * - PostgreSQL classes 22 (data exception) and 23 (integrity constraint violation).
 * - SQLite constraint, type-mismatch and too-big errors.
 */
export function isPermanentError(err: unknown): boolean {
  if (err instanceof RangeError || err instanceof TypeError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  if (/^2[23][0-9A-Z]{3}$/.test(code)) return true;
  return code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG';
}

/**
 * Writes `items` in one call; when that fails for good ({@link isPermanentError}), writes
 * them one by one and hands each refused one to `reject`. A transient error on the way is
 * thrown, so the caller retries the whole batch (writes must be idempotent).
 */
export async function writeIsolating<T>(
  items: readonly T[],
  write: (items: readonly T[]) => Promise<void>,
  reject: (item: T, err: unknown) => void
): Promise<void> {
  try {
    await write(items);
  } catch (err) {
    if (!isPermanentError(err)) throw err;
    for (const item of items) {
      try {
        await write([item]);
      } catch (one) {
        if (!isPermanentError(one)) throw one;
        reject(item, one);
      }
    }
  }
}
