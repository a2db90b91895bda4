/**
 * Coalesces the writes of one event-loop turn: a connection is corked on its first
 * write of the turn and every corked connection is uncorked together once the turn's
 * I/O callbacks have run (setImmediate). One syscall per recipient per turn, however
 * many frames it got.
 */
export interface Corkable {
  /** Called once at the end of the turn in which it was scheduled. */
  uncorkNow(): void;
}

export class CorkScheduler {
  private pending: Corkable[] = [];
  private first: Corkable[] = [];
  private scheduled = false;

  /** Uncork `c` at the end of this turn. The caller has corked it and tracks that. */
  schedule(c: Corkable): void {
    this.pending.push(c);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /**
   * Uncork `c` (already scheduled) ahead of the others at the end of this turn: for an
   * answer its peer is waiting on to send more (a broadcast's `received`), which should
   * not sit behind a fan-out to thousands of sockets. `uncorkNow` must tolerate the
   * second call.
   */
  scheduleFirst(c: Corkable): void {
    this.first.push(c);
  }

  /** Uncork everything now (also used on shutdown). */
  readonly flush = (): void => {
    this.scheduled = false;
    const first = this.first;
    const list = this.pending;
    this.first = [];
    this.pending = [];
    for (let i = 0; i < first.length; i++) first[i]!.uncorkNow();
    for (let i = 0; i < list.length; i++) list[i]!.uncorkNow();
  };
}
