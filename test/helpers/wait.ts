/**
 * The one way a test waits: poll for a state, never sleep for a time.
 * `cond` is polled every `intervalMs` (default 10) until it returns true; after `timeoutMs`
 * (default 10,000) it rejects with `timed out waiting for <what>`. An exception thrown by `cond`
 * fails the wait at once, so an assertion inside it surfaces as the test's failure.
 */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 10
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
