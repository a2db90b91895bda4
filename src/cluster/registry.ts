import type { SessionInfo, WorkerStats, WorkerTotals } from './ipc-messages.js';
import { ChannelSet } from '../channels/channel-set.js';

/** Lifecycle of a worker as the agent sees it; a worker that exited leaves the registry. */
export type WorkerState = 'starting' | 'ready' | 'draining';

/**
 * One session, as its worker reported it. The agent holds one per session of every
 * worker, so it is kept small (#15): a class of fixed shape, and its channels inline
 * (it is a ChannelSet: one name, a Set only from the second channel on).
 */
export class SessionEntry extends ChannelSet implements SessionInfo {
  readonly id: string;
  readonly remoteAddr: string;
  readonly user: string | null;
  readonly protocol: SessionInfo['protocol'];
  readonly connectedAt: number;

  constructor(
    info: SessionInfo,
    /** The registry key of the worker that holds it. */
    readonly worker: number
  ) {
    super();
    this.id = info.id;
    this.remoteAddr = info.remoteAddr;
    this.user = info.user;
    this.protocol = info.protocol;
    this.connectedAt = info.connectedAt;
  }

  /** The channels it is a member of (a fresh array). */
  get channels(): string[] {
    return this.toArray();
  }
}

interface WorkerEntry {
  key: number;
  slot: number;
  pid: number;
  /** The worker's server id (null until its `hello`). */
  serverId: string | null;
  state: WorkerState;
  startedAt: number;
  /** Direct port, when `workerPorts` is set. */
  port: number | null;
  stats: WorkerStats | null;
  sessions: Set<SessionEntry>;
}

/** A worker as `GET /agent/workers` shows it. */
export interface WorkerView {
  id: string | null;
  slot: number;
  pid: number;
  state: WorkerState;
  startedAt: string;
  uptimeMs: number;
  port: number | null;
  /** Live count from the session events (not from the last stats report). */
  sessions: number;
  channels: number;
  messagesInPerSec: number;
  messagesOutPerSec: number;
  heapUsedBytes: number;
  rssBytes: number;
  loopLagMs: number;
  /** Open direct links to other workers (from the last stats report). */
  peers: number;
  /** Refusals by the worker's flood limits, by reason (from the last stats report). */
  refused?: Record<string, number>;
  /** Records from other processes the worker dropped as unreadable or undeliverable (from the last stats report). */
  undeliverable: number;
  /** `--accept shared`: connections it took at its share of `--max-connections` and passed to the agent to place (from the last stats report). */
  forwarded: number;
}

/** A session as `GET /agent/sessions` shows it. */
export interface SessionView {
  id: string;
  worker: string | null;
  pid: number;
  remoteAddr: string;
  user: string | null;
  protocol: string;
  connectedAt: string;
  channels: string[];
}

/** Counters of the admin overview: they only grow. */
export interface AdminCounters extends WorkerTotals {
  sessionsOpened: number;
  /** Closed, or lost with their worker. */
  sessionsClosed: number;
}

/** Filter of `sessions()`. */
export interface SessionQuery {
  channel?: string | null;
  user?: string | null;
  /** Most sessions returned. */
  limit: number;
}

/**
 * The agent's live list of its workers and of every session they hold, fed by the
 * workers' IPC events (open, close, subscribe, unsubscribe, stats) as they happen.
 * Its size follows the sessions that really exist: a closed session or an exited
 * worker leaves it at once. Channel membership is indexed, so a query by channel
 * does not scan every session.
 */
export class Registry {
  private readonly workersByKey = new Map<number, WorkerEntry>();
  private readonly sessionsById = new Map<string, SessionEntry>();
  private readonly byChannel = new Map<string, Set<SessionEntry>>();
  /** Told each time a session joins or leaves a channel (closed and lost sessions included). */
  onMembership: ((type: 'joined' | 'left', channel: string, member: { session: string; user: string | null }) => void) | null = null;
  /** Workers started per slot (the first and every replacement; slots are few). */
  private readonly startsBySlot = new Map<number, number>();
  /** Message counters of the workers that exited, so the totals never go down. */
  private readonly retired: WorkerTotals = { messagesIn: 0, messagesOut: 0 };
  /** Sessions opened and ended since start, counted from the events (a lost worker's sessions end with it). */
  private opened = 0;
  private ended = 0;

  /** Adds a worker process that was just started. */
  addWorker(key: number, slot: number, pid: number, startedAt = Date.now()): void {
    this.workersByKey.set(key, { key, slot, pid, serverId: null, state: 'starting', startedAt, port: null, stats: null, sessions: new Set() });
    this.startsBySlot.set(slot, (this.startsBySlot.get(slot) ?? 0) + 1);
  }

  setServerId(key: number, serverId: string): void {
    const w = this.workersByKey.get(key);
    if (w) w.serverId = serverId;
  }

  setState(key: number, state: WorkerState, port?: number | null): void {
    const w = this.workersByKey.get(key);
    if (!w) return;
    w.state = state;
    if (port !== undefined) w.port = port;
  }

  setStats(key: number, stats: WorkerStats): void {
    const w = this.workersByKey.get(key);
    if (w) w.stats = stats;
  }

  /** Removes an exited worker; returns the sessions it held (lost with it). */
  removeWorker(key: number): SessionEntry[] {
    const w = this.workersByKey.get(key);
    if (!w) return [];
    this.workersByKey.delete(key);
    addTotals(this.retired, w.stats?.totals);
    const lost = [...w.sessions];
    this.ended += lost.length;
    for (const s of lost) this.forget(s);
    return lost;
  }

  sessionOpened(key: number, info: SessionInfo): void {
    const w = this.workersByKey.get(key);
    if (!w || this.sessionsById.has(info.id)) return;
    const entry = new SessionEntry(info, key);
    this.sessionsById.set(info.id, entry);
    w.sessions.add(entry);
    this.opened++;
  }

  sessionClosed(key: number, sessionId: string): void {
    const s = this.sessionsById.get(sessionId);
    if (s && s.worker === key) {
      this.workersByKey.get(key)?.sessions.delete(s);
      this.forget(s);
      this.ended++;
    }
  }

  subscribed(key: number, sessionId: string, channel: string): void {
    const s = this.sessionsById.get(sessionId);
    if (!s || s.worker !== key || !s.add(channel)) return;
    let members = this.byChannel.get(channel);
    if (!members) {
      members = new Set();
      this.byChannel.set(channel, members);
    }
    members.add(s);
    this.onMembership?.('joined', channel, { session: s.id, user: s.user });
  }

  unsubscribed(key: number, sessionId: string, channel: string): void {
    const s = this.sessionsById.get(sessionId);
    if (!s || s.worker !== key || !s.delete(channel)) return;
    this.leaveIndex(s, channel);
  }

  /** Sessions a worker holds now (live, from the events). */
  sessionCount(key: number): number {
    return this.workersByKey.get(key)?.sessions.size ?? 0;
  }

  /** Sessions in all workers. */
  get totalSessions(): number {
    return this.sessionsById.size;
  }

  /** The worker's server id, or null. */
  serverIdOf(key: number): string | null {
    return this.workersByKey.get(key)?.serverId ?? null;
  }

  /** Every worker, by slot then start time. */
  workers(now = Date.now()): WorkerView[] {
    return [...this.workersByKey.values()]
      .sort((a, b) => a.slot - b.slot || a.startedAt - b.startedAt)
      .map((w) => ({
        id: w.serverId,
        slot: w.slot,
        pid: w.pid,
        state: w.state,
        startedAt: new Date(w.startedAt).toISOString(),
        uptimeMs: now - w.startedAt,
        port: w.port,
        sessions: w.sessions.size,
        channels: w.stats?.channels ?? 0,
        messagesInPerSec: w.stats?.messagesInPerSec ?? 0,
        messagesOutPerSec: w.stats?.messagesOutPerSec ?? 0,
        heapUsedBytes: w.stats?.heapUsedBytes ?? 0,
        rssBytes: w.stats?.rssBytes ?? 0,
        loopLagMs: w.stats?.loopLagMs ?? 0,
        peers: w.stats?.peers ?? 0,
        refused: w.stats?.refused ?? {},
        undeliverable: w.stats?.undeliverable ?? 0,
        forwarded: w.stats?.forwarded ?? 0
      }));
  }

  /** Sessions matching the filter (a channel's members come from the index), at most `limit`. */
  sessions(query: SessionQuery): { sessions: SessionView[]; truncated: boolean } {
    const source: Iterable<SessionEntry> = query.channel ? this.byChannel.get(query.channel) ?? [] : this.sessionsById.values();
    const out: SessionView[] = [];
    let truncated = false;
    for (const s of source) {
      if (query.user && s.user !== query.user) continue;
      if (out.length >= query.limit) {
        truncated = true;
        break;
      }
      out.push(this.view(s));
    }
    return { sessions: out, truncated };
  }

  /** Appends the members of `channel` (from the index) to `out` until it holds `limit`; true when some were left out. */
  appendMembers(channel: string, limit: number, out: Array<{ session: string; user: string | null }>): boolean {
    const members = this.byChannel.get(channel);
    if (members === undefined) return false;
    for (const s of members) {
      if (out.length >= limit) return true;
      out.push({ session: s.id, user: s.user });
    }
    return false;
  }

  // The admin dashboard's questions (cluster/admin-answers.ts).

  /**
   * Sessions whose id, user, address or one of whose channels contains `q` (case-insensitive;
   * every session when `q` is empty), at most `limit`. A scan: O(sessions), for an operator's search.
   */
  findSessions(q: string, limit: number): { sessions: SessionView[]; truncated: boolean } {
    const needle = q.toLowerCase();
    const hit = (s: SessionEntry): boolean => {
      if (needle === '') return true;
      if (s.id.toLowerCase().includes(needle) || s.remoteAddr.toLowerCase().includes(needle)) return true;
      if (s.user !== null && s.user.toLowerCase().includes(needle)) return true;
      for (const ch of s.channels) if (ch.toLowerCase().includes(needle)) return true;
      return false;
    };
    const out: SessionView[] = [];
    for (const s of this.sessionsById.values()) {
      if (!hit(s)) continue;
      if (out.length >= limit) return { sessions: out, truncated: true };
      out.push(this.view(s));
    }
    return { sessions: out, truncated: false };
  }

  /** How many times slot `slot` got a new worker (after a crash or a reload). */
  restartsOf(slot: number): number {
    return Math.max(0, (this.startsBySlot.get(slot) ?? 0) - 1);
  }

  /** The registry key of the worker holding session `id`, or null when no worker does. */
  workerOf(id: string): number | null {
    return this.sessionsById.get(id)?.worker ?? null;
  }

  /** How many channels have members, and the `limit` with most members (ties by name). O(channels). */
  channelCounts(limit: number): { total: number; top: Array<{ channel: string; members: number }> } {
    const all = [...this.byChannel].map(([channel, members]) => ({ channel, members: members.size }));
    all.sort((a, b) => b.members - a.members || (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0));
    return { total: all.length, top: all.slice(0, limit) };
  }

  /**
   * Counters since the agent started: sessions opened and ended as the events came (live),
   * messages from every worker's last report plus those of the workers that exited.
   */
  counters(): AdminCounters {
    const sum: WorkerTotals = { ...this.retired };
    for (const w of this.workersByKey.values()) addTotals(sum, w.stats?.totals);
    return { ...sum, sessionsOpened: this.opened, sessionsClosed: this.ended };
  }

  private view(s: SessionEntry): SessionView {
    const w = this.workersByKey.get(s.worker);
    return {
      id: s.id,
      worker: w?.serverId ?? null,
      pid: w?.pid ?? 0,
      remoteAddr: s.remoteAddr,
      user: s.user,
      protocol: s.protocol,
      connectedAt: new Date(s.connectedAt).toISOString(),
      channels: s.channels
    };
  }

  private forget(s: SessionEntry): void {
    this.sessionsById.delete(s.id);
    for (const ch of s.channels) this.leaveIndex(s, ch);
  }

  private leaveIndex(s: SessionEntry, channel: string): void {
    const members = this.byChannel.get(channel);
    if (!members) return;
    if (members.delete(s)) this.onMembership?.('left', channel, { session: s.id, user: s.user });
    if (members.size === 0) this.byChannel.delete(channel);
  }
}

function addTotals(into: WorkerTotals, t: WorkerTotals | undefined): void {
  if (t === undefined) return;
  into.messagesIn += t.messagesIn;
  into.messagesOut += t.messagesOut;
}
