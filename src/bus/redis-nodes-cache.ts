/**
 * The other nodes' state as this node last saw it. `remoteCount` must answer
 * synchronously, so each node caches the other nodes' hashes (see redis-keys.ts):
 * deltas arrive on the control channel; a gap in a node's `seq`, an unknown node or a
 * rewrite triggers a re-read of its hash, and deltas that arrive while the re-read is in
 * flight are re-applied on top of it, so the cache converges exactly. Counts are
 * eventually consistent: a change is seen elsewhere after about one Redis round trip;
 * a lost notice is corrected by the periodic resync (redis-bus.ts).
 *
 * Pure state: the hash is read through the function given, so this runs without Redis.
 */

/** Reads a node's hash (`{}` when it does not exist); may reject. */
export type ReadNodeHash = (id: string) => Promise<Record<string, string>>;

/** channel → session → user (every channel's members, for presence; private ones' also for a dead node's `left`) */
export type Members = Map<string, Map<string, string | null>>;

/** A cached view of another node's hash. */
interface RemoteNode {
  seq: number;
  counts: Map<string, number>;
  members: Members;
  /** Deltas received while its hash is being re-read; null when no re-read is in flight. */
  pending: Array<{ seq: number; fields: unknown[] }> | null;
  /** Read the hash again once the re-read in flight is done (it may predate a rewrite). */
  refetch: boolean;
}

export class NodesCache {
  private readonly nodes = new Map<string, RemoteNode>();
  /** channel → members on all other nodes */
  private readonly totals = new Map<string, number>();
  private closed = false;

  /**
   * @param read reads a node's hash when the cache lacks part of it
   * @param onCount told each time a channel's total changes, with the new total
   */
  constructor(
    private readonly read: ReadNodeHash,
    private readonly onCount: (channel: string, total: number) => void
  ) {}

  /** Members of `channel` on all other nodes. */
  count(channel: string): number {
    return this.totals.get(channel) ?? 0;
  }

  /** The nodes known. */
  ids(): string[] {
    return [...this.nodes.keys()];
  }

  /** Whether version `seq` of a node's hash is newer than the cache's (or the node unknown). */
  behind(id: string, seq: number): boolean {
    const n = this.nodes.get(id);
    return n === undefined || seq > n.seq;
  }

  /** A delta notice of a node: applied when newer; a gap or an unknown node is re-read. */
  delta(id: string, seq: number, fields: unknown[]): void {
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = { seq: 0, counts: new Map(), members: new Map(), pending: null, refetch: false };
      this.nodes.set(id, n);
    }
    if (n.pending !== null) n.pending.push({ seq, fields });
    if (seq <= n.seq) return;
    const gap = seq > n.seq + 1;
    this.applyFields(n, fields);
    n.seq = seq;
    if (gap) void this.fetch(id);
  }

  /** A rewrite notice of a node: its hash is re-read when newer than the cache. */
  rewritten(id: string, seq: number): void {
    if (this.behind(id, seq)) void this.fetch(id);
  }

  /**
   * Re-reads a node's hash. Deltas that arrive meanwhile are kept and re-applied on top
   * of what was read when newer, so the result is exact whatever the arrival order. A
   * failed read leaves the cache as it was (the resync tries again).
   */
  async fetch(id: string): Promise<void> {
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = { seq: -1, counts: new Map(), members: new Map(), pending: null, refetch: false };
      this.nodes.set(id, n);
    }
    if (n.pending !== null) {
      n.refetch = true; // the read in flight may predate what made us ask
      return;
    }
    do {
      n.refetch = false;
      n.pending = [];
      let hash: Record<string, string>;
      try {
        hash = await this.read(id);
      } catch {
        n.pending = null;
        return;
      }
      const pending = n.pending;
      n.pending = null;
      if (this.nodes.get(id) !== n || this.closed) return; // dropped meanwhile
      const seq = Number(hash.seq);
      if (!Number.isFinite(seq)) {
        // Gone (or not written yet): the resync decides whether it is dead.
        if (n.seq < 0) this.nodes.delete(id);
        return;
      }
      if (seq >= n.seq || pending.length > 0) {
        // Rebuild: clear the cached view, apply the hash, then the newer deltas.
        for (const ch of [...n.counts.keys()]) this.setCount(n, ch, 0);
        n.members.clear();
        for (const [field, value] of Object.entries(hash)) this.applyField(n, field, value);
        n.seq = seq;
        for (const d of pending) {
          if (d.seq <= n.seq) continue;
          if (d.seq > n.seq + 1) n.refetch = true; // deltas between were missed
          this.applyFields(n, d.fields);
          n.seq = d.seq;
        }
      }
    } while (n.refetch);
  }

  /**
   * Appends the members of `channel` on the other nodes (from their hashes' `m:` fields)
   * to `out` until it holds `limit`; true when some were left out. For presence.
   */
  appendMembers(channel: string, limit: number, out: Array<{ session: string; user: string | null }>): boolean {
    for (const n of this.nodes.values()) {
      const m = n.members.get(channel);
      if (m === undefined) continue;
      for (const [session, user] of m) {
        if (out.length >= limit) return true;
        out.push({ session, user });
      }
    }
    return false;
  }

  /** Forgets a node (its counts go to 0); returns its private-channel members, if it was known. */
  drop(id: string): Members | undefined {
    const n = this.nodes.get(id);
    if (n === undefined) return undefined;
    this.nodes.delete(id);
    for (const ch of [...n.counts.keys()]) this.setCount(n, ch, 0);
    return n.members;
  }

  /** Stops applying reads still in flight (the bus closed). */
  close(): void {
    this.closed = true;
  }

  /** Applies `field, value|null, …` pairs of a node's hash to its cached view. */
  private applyFields(n: RemoteNode, fields: unknown[]): void {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = fields[i];
      const value = fields[i + 1];
      if (typeof field !== 'string' || (value !== null && typeof value !== 'string')) continue;
      this.applyField(n, field, value);
    }
  }

  private applyField(n: RemoteNode, field: string, value: string | null): void {
    if (field.startsWith('c:')) {
      const ch = field.slice(2);
      const count = value === null ? 0 : Number(value);
      this.setCount(n, ch, Number.isFinite(count) && count > 0 ? count : 0);
    } else if (field.startsWith('m:')) {
      const sp = field.lastIndexOf(' ');
      if (sp < 2) return;
      const ch = field.slice(2, sp);
      const session = field.slice(sp + 1);
      let m = n.members.get(ch);
      if (value === null) {
        if (m?.delete(session) && m.size === 0) n.members.delete(ch);
        return;
      }
      let user: string | null = null;
      try {
        const u: unknown = JSON.parse(value);
        user = typeof u === 'string' ? u : null;
      } catch {
        user = null;
      }
      if (m === undefined) n.members.set(ch, (m = new Map()));
      m.set(session, user);
    }
  }

  private setCount(n: RemoteNode, channel: string, count: number): void {
    const old = n.counts.get(channel) ?? 0;
    if (old === count) return;
    if (count > 0) n.counts.set(channel, count);
    else n.counts.delete(channel);
    const t = (this.totals.get(channel) ?? 0) + count - old;
    if (t > 0) this.totals.set(channel, t);
    else this.totals.delete(channel);
    this.onCount(channel, t > 0 ? t : 0);
  }
}
