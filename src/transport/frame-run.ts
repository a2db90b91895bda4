/**
 * The frames a connection was sent in one turn, as a node of a tree that every
 * connection shares: connections sent the same frames in the same order (the members
 * of a channel, for that channel's broadcasts) end the turn on the same node, and its
 * bytes are joined once for all of them. Each connection then hands the kernel one
 * shared buffer per turn, instead of one stream write per frame and a writev.
 *
 * The root of a frame's tree is the frame alone (`FrameRun.of`); a node lives as long as
 * a frame or a connection holds it, so the tree goes with the turn's frames.
 */
export class FrameRun {
  /** The first node after this one, the usual case (a channel's members get the same next frame). */
  private nextBytes: Buffer | null = null;
  private nextRun: FrameRun | null = null;
  /** Further nodes after this one, keyed by their last frame (members of different channels). */
  private more: Map<Buffer, FrameRun> | null = null;
  private joined: Buffer | null;

  private constructor(
    private readonly parent: FrameRun | null,
    /** The last frame's bytes. */
    private readonly last: Buffer,
    /** Bytes of all the frames of the run. */
    readonly length: number
  ) {
    this.joined = parent === null ? last : null;
  }

  /** The run of one frame. */
  static of(bytes: Buffer): FrameRun {
    return new FrameRun(null, bytes, bytes.length);
  }

  /** The run of this one's frames then `next` (the root of `next`'s own tree). */
  then(next: FrameRun): FrameRun {
    const bytes = next.last;
    if (this.nextBytes === bytes) return this.nextRun!;
    if (this.nextBytes === null) {
      this.nextBytes = bytes;
      return (this.nextRun = new FrameRun(this, bytes, this.length + bytes.length));
    }
    this.more ??= new Map();
    let run = this.more.get(bytes);
    if (run === undefined) this.more.set(bytes, (run = new FrameRun(this, bytes, this.length + bytes.length)));
    return run;
  }

  /** The frames of the run in one buffer, joined on the first call and shared after. */
  bytes(): Buffer {
    if (this.joined !== null) return this.joined;
    const joined = Buffer.allocUnsafe(this.length);
    let end = this.length;
    for (let run: FrameRun | null = this; run !== null; run = run.parent) {
      end -= run.last.length;
      run.last.copy(joined, end);
    }
    return (this.joined = joined);
  }
}
