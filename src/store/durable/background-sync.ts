/** What {@link BackgroundSync} syncs: a journal file (journal-file.ts). */
export interface SyncableFile {
  readonly path: string;
  sync(): Promise<void>;
}

/**
 * The background fdatasync of an append-only journal (the audit journal, the webhook
 * queues): one at a time, on the file appended to now, covering every append before it;
 * appends made while one runs are covered by the next. It bounds what a power loss can
 * take; a process crash loses nothing anyway (the appends are `write(2)`s).
 */
export class BackgroundSync {
  /** Appended since the last fdatasync started. */
  private dirty = false;
  private syncing = false;

  /** `current`: the file appended to now (null: none open); `failed`: told of an fdatasync error. */
  constructor(
    private readonly current: () => SyncableFile | null,
    private readonly failed: (err: unknown, file: SyncableFile) => void
  ) {}

  /** Call after each append. */
  appended(): void {
    this.dirty = true;
    this.run();
  }

  private run(): void {
    const file = this.current();
    if (this.syncing || !this.dirty || file === null) return;
    this.syncing = true;
    this.dirty = false;
    file.sync().then(
      () => {
        this.syncing = false;
        this.run();
      },
      (err: unknown) => {
        this.syncing = false;
        this.failed(err, file);
      }
    );
  }
}
