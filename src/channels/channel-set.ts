/**
 * The channels one session is in, kept small (#15): most sessions join one channel, and
 * a `Set` with its hash table costs ~280 bytes per session. The first name is held
 * inline; a `Set` exists only from the second channel on. Iteration order is not
 * insertion order once a channel was deleted.
 */
export class ChannelSet implements Iterable<string> {
  private first: string | null = null;
  private more: Set<string> | null = null;

  /** A set holding `channels`. */
  static of(channels: Iterable<string>): ChannelSet {
    const set = new ChannelSet();
    for (const channel of channels) set.add(channel);
    return set;
  }

  get size(): number {
    return (this.first === null ? 0 : 1) + (this.more?.size ?? 0);
  }

  has(channel: string): boolean {
    return this.first === channel || (this.more?.has(channel) ?? false);
  }

  /** Adds `channel`; false when it was there already. */
  add(channel: string): boolean {
    if (this.has(channel)) return false;
    if (this.first === null) this.first = channel;
    else (this.more ??= new Set()).add(channel);
    return true;
  }

  /** Removes `channel`; false when it was not there. */
  delete(channel: string): boolean {
    if (this.first === channel) {
      this.first = null;
      if (this.more !== null) {
        // Keep the inline slot filled while there are channels, so `more` empties first.
        const next = this.more.values().next();
        if (next.done !== true) {
          this.first = next.value;
          this.more.delete(next.value);
        }
        if (this.more.size === 0) this.more = null;
      }
      return true;
    }
    if (this.more === null || !this.more.delete(channel)) return false;
    if (this.more.size === 0) this.more = null;
    return true;
  }

  clear(): void {
    this.first = null;
    this.more = null;
  }

  /** The channels, as a fresh array (safe to change the set while walking it). */
  toArray(): string[] {
    const out = this.first === null ? [] : [this.first];
    if (this.more !== null) out.push(...this.more);
    return out;
  }

  [Symbol.iterator](): Iterator<string> {
    return this.toArray()[Symbol.iterator]();
  }
}
