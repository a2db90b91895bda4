/**
 * Confirmation round trips to one other process, one at a time (group commit): a round
 * asks the other end to confirm it read everything written before it (a `sync`), and
 * whoever asks while a round is in flight rides the next one, sent when that one is
 * answered. However many sessions subscribe during a connect burst, a worker sends a
 * peer at most one `sync` per round-trip time, not one per session.
 *
 * A round that was started but not yet written (its record still waits for the turn's
 * write, `written()` unchanged) covers an ask made now too: that ask's counts go out in
 * the same write, ahead of the `sync`.
 */
export class RoundTrips {
  private current: Promise<boolean> | null = null;
  /** `written()` when the current round's record was queued. */
  private currentAt = -1;
  private queued: Promise<boolean> | null = null;

  /**
   * @param start queues one `sync` record; resolves true with the answer, false when none came
   * @param written how many writes the link has made so far (a round queued in an unwritten batch can still be joined)
   */
  constructor(
    private readonly start: () => Promise<boolean>,
    private readonly written: () => number
  ) {}

  /** Whether no round is in flight or queued. */
  get idle(): boolean {
    return this.current === null && this.queued === null;
  }

  /** Resolves once a round that covers everything written or queued before this call is answered. */
  ask(): Promise<boolean> {
    if (this.current === null) return this.begin();
    if (this.written() === this.currentAt) return this.current;
    this.queued ??= this.current.then(() => {
      this.queued = null;
      return this.begin();
    });
    return this.queued;
  }

  private begin(): Promise<boolean> {
    this.currentAt = this.written();
    const round: Promise<boolean> = this.start().then((ok) => {
      if (this.current === round) this.current = null;
      return ok;
    });
    this.current = round;
    return round;
  }
}
