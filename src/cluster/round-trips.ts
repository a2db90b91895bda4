/**
 * Least time between the starts of two sync rounds to one process. A connect burst on
 * 2 cores was bound by wake-ups: a round costs the peer a wake-up and this worker one
 * more for the answer, and with rounds back to back each one covered fewer than two new
 * members. Spacing them lets a round cover every member of that time; a subscribe that
 * comes when no round started in the last interval is not delayed at all.
 */
export const SYNC_ROUND_INTERVAL_MS = 10;

/**
 * Confirmation round trips to one other process, one at a time (group commit): a round
 * asks the other end to confirm it read everything written before it (a `sync`), and
 * whoever asks while a round is in flight, or less than `intervalMs` after the last one
 * began, rides the next one. However many sessions subscribe during a connect burst, a
 * worker sends a peer at most one `sync` per interval or round-trip time, whichever is
 * longer, not one per session.
 *
 * A round that was started but not yet written (its record still waits for the turn's
 * write: `written()` unchanged) covers an ask made now too: that ask's counts go out in
 * the same write, ahead of the `sync`.
 */
export class RoundTrips {
  private current: Promise<boolean> | null = null;
  /** `written()` when the current round's record was queued. */
  private currentAt = -1;
  private lastStartAt = -Infinity;
  private queued: { promise: Promise<boolean>; resolve: (ok: boolean) => void } | null = null;
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param start queues one `sync` record; resolves true with the answer, false when none came
   * @param written how many writes the link has made so far (a round queued in an unwritten batch can still be joined)
   * @param intervalMs least time between the starts of two rounds
   */
  constructor(
    private readonly start: () => Promise<boolean>,
    private readonly written: () => number,
    private readonly intervalMs = SYNC_ROUND_INTERVAL_MS
  ) {}

  /** Whether no round is in flight or queued. */
  get idle(): boolean {
    return this.current === null && this.queued === null;
  }

  /** Resolves once a round that covers everything written or queued before this call is answered. */
  ask(): Promise<boolean> {
    if (this.current !== null && this.written() === this.currentAt) return this.current;
    if (this.queued !== null) return this.queued.promise;
    if (this.current === null && performance.now() - this.lastStartAt >= this.intervalMs) return this.begin();
    let resolve!: (ok: boolean) => void;
    const promise = new Promise<boolean>((r) => (resolve = r));
    this.queued = { promise, resolve };
    // May start it at once (the interval ran out meanwhile): the promise is kept here.
    this.startQueuedWhenDue();
    return promise;
  }

  /** Starts the queued round once no round is in flight and the interval has passed. */
  private startQueuedWhenDue(): void {
    if (this.queued === null || this.current !== null || this.timer !== null) return;
    const wait = this.lastStartAt + this.intervalMs - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.startQueuedWhenDue();
      }, wait);
      this.timer.unref();
      return;
    }
    const next = this.queued;
    this.queued = null;
    void this.begin().then(next.resolve);
  }

  private begin(): Promise<boolean> {
    this.currentAt = this.written();
    this.lastStartAt = performance.now();
    const round: Promise<boolean> = this.start().then((ok) => {
      if (this.current === round) this.current = null;
      this.startQueuedWhenDue();
      return ok;
    });
    this.current = round;
    return round;
  }
}
