/** A deadline that passed: told apart by its class, never by its message text. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  /** How long was allowed, in milliseconds. */
  readonly ms: number;
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.ms = ms;
  }
}

/**
 * Settles like `p`, or rejects with a `TimeoutError` after `ms`. The timer is cleared when `p`
 * settles first, so nothing is left behind; `p` itself is not cancelled (its rejection, if any,
 * is handled).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err);
      }
    );
  });
}
