/**
 * When the audit writer's next group commit starts. With an asynchronous write
 * (PostgreSQL) the window is 0: a commit starts at the end of the turn in which the writer
 * is idle with rows waiting, and the commit in flight is the window. A synchronous write
 * (SQLite) holds the thread while it commits, so after each commit the next waits as long
 * as that one took, at most `batchMs`: commits take at most about half the thread however
 * busy it is, and a cheap commit adds next to no wait. A full batch does not wait.
 */
export class GroupCommitScheduler {
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private lastCommitEnd = -Infinity;
  /** How long the last commit took (for a synchronous write: how long it held the thread). */
  private lastCommitMs = 0;

  constructor(
    private readonly batchMs: number,
    private readonly run: () => void
  ) {}

  /** Whether a start is already due (timer or immediate armed). */
  get armed(): boolean {
    return this.timer !== null || this.immediate !== null;
  }

  /** Whether the window after the last commit is still open (the next commit should wait). */
  get waiting(): boolean {
    return this.lastCommitEnd + this.window() - performance.now() >= 1;
  }

  /** Starts the writer at the end of this turn, or once the window after the last commit has passed. */
  arm(): void {
    if (this.armed) return;
    const wait = this.lastCommitEnd + this.window() - performance.now();
    // Under a millisecond a timer would wait a whole one (its granularity): go now.
    if (wait < 1) this.immediate = setImmediate(this.tick);
    else this.timer = setTimeout(this.tick, wait);
  }

  /** Starts the writer at the end of this turn (a full batch), never inside the caller's. */
  now(): void {
    if (this.immediate !== null) return;
    this.clear();
    this.immediate = setImmediate(this.tick);
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  /** Notes a commit that started at `startedAt` (performance.now()) and just ended. */
  committed(startedAt: number): void {
    this.lastCommitEnd = performance.now();
    this.lastCommitMs = this.lastCommitEnd - startedAt;
  }

  /** Notes a commit's end without timing it (a detached one). */
  ended(): void {
    this.lastCommitEnd = performance.now();
  }

  private window(): number {
    return Math.min(this.batchMs, this.lastCommitMs);
  }

  private readonly tick = (): void => {
    this.timer = null;
    this.immediate = null;
    this.run();
  };
}
