/**
 * Promises resolved by a writer, not polled: `until(cond, ms)` resolves true once
 * `cond()` holds at a `notify()` (or at the call), false after `ms`. The writer calls
 * `notify()` whenever the state a waiter may look at changes.
 */
export class Waiters {
  private readonly checks = new Set<() => void>();

  until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise<boolean>((done) => {
      const check = (): void => {
        if (!cond()) return;
        finish(true);
      };
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.checks.delete(check);
        done(ok);
      };
      const timer = setTimeout(() => finish(cond()), Math.max(0, timeoutMs));
      this.checks.add(check);
    });
  }

  notify(): void {
    for (const check of [...this.checks]) check();
  }

}
