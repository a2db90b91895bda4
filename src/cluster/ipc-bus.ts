import { serialize, deserialize } from 'node:v8';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { LogThrottle } from '../log.js';
import type { Bus, BusMessage } from '../bus/bus.js';
import type { ChannelLog, LogRead } from '../bus/channel-log.js';
import { ALL_CHANNEL, type Position } from '../protocol/frames.js';
import { PeerLink, type PeerControl } from './peer-link.js';
import { SYNC_TIMEOUT_MS, type IpcPort } from './ipc-port.js';
import { RoundTrips } from './round-trips.js';

/** A confirmation round in flight for one channel: every peer (and the agent when asked) reads this worker's counts up to `count`. */
interface Sync {
  count: number;
  /** Still in the turn it was asked in: its `sync` records follow every count set in this turn. */
  open: boolean;
  promise: Promise<void>;
}

/** One other worker, as this worker's bus sees it. */
interface Peer {
  readonly link: PeerLink;
  /** Its member counts (> 0 only); routing and `remoteCount` follow them. */
  readonly counts: Map<string, number>;
  /** It sent its whole table (`table-end`). */
  ready: boolean;
  /** This worker's syncs it has not answered yet. */
  readonly syncs: Map<number, () => void>;
  /** The sync rounds to it, one at a time (round-trips.ts). */
  readonly rounds: RoundTrips;
}

/**
 * The bus of a worker. A message goes straight to every OTHER worker with members of its
 * channel (every other worker with sessions for `*`), over a direct link to each one that
 * the agent set up (peer-link.ts): once per worker, never once per recipient, without
 * waking the agent. With `--bus` it also goes to the agent, which is the node of the
 * Redis bus for all its workers and routes the other nodes' messages to them (`deliver`).
 *
 * - Routing: each worker tells every peer its member counts (coalesced per turn); a peer
 *   publishes to it while its count is above 0. The agent gets them too (the registry,
 *   its own messages, the other nodes).
 * - `publish` serializes the message once (v8 structured clone: binary data, dates,
 *   NaN survive) and queues the same bytes on each target link with the turn's write.
 * - `whenSubscribed`: a new member is in effect once every peer has read this worker's
 *   new count (it routes AND counts by it), and, for a channel new to this worker or on a
 *   Redis bus, once the agent has too (and, on a Redis bus, once its subscription is
 *   acknowledged and the other nodes were told the count): a `sync` round trip with
 *   each, in parallel. Rounds are group-committed (round-trips.ts): one in flight per
 *   peer (per channel with the agent), and every member that joins meanwhile rides the
 *   next one, so a connect burst costs a peer one `sync` per round-trip time, not one
 *   per session. A peer that exits meanwhile no longer needs to know.
 * - A new worker is linked to every worker alive when it starts and reads each one's
 *   whole table before it takes connections (`whenPeersReady`): a message it publishes
 *   reaches every member that was already told `subscribed`.
 * - `remoteCount` is the sum of the counts the peers sent over their links (kept as a
 *   running total per channel, so it costs one lookup), plus what the agent pushed of
 *   the members on other nodes (`--bus`). A peer answers a `sync` only after reading the
 *   counts before it, so a member that was told `subscribed` on another worker is always
 *   counted here.
 * - Ordering: each link is a FIFO stream, so messages from one worker reach another in
 *   the order they were published.
 * - `publish` refuses (returns false) when the agent is gone, or, with `--bus`, when it
 *   has stopped reading and MAX_UNSENT_TO_AGENT_BATCHES batches wait for its pipe: the hub then
 *   answers the sender `bus unavailable`. A worker that has stopped reading (a blocked
 *   event loop, until the agent's watchdog replaces it) gets nothing more once
 *   MAX_PEER_UNSENT_BATCHES writes wait for its link: its deliveries are dropped and
 *   counted (`dropped`), the other workers still get theirs. What was in flight to a
 *   worker that dies is lost (delivery is at most once).
 * - A record from a peer or the agent that cannot be read or delivered (`receive`) is
 *   dropped, counted (`undeliverable`, in the worker's stats: `GET /agent/workers`) and
 *   logged at most every 10 s; it never throws out of the event loop, so one bad message
 *   cannot take a worker and its sessions down.
 */
export class IpcBus implements Bus {
  /** Members on other nodes, as the agent last pushed them (`--bus`). */
  private readonly external = new Map<string, number>();
  /** Channel → the sum of the peers' counts (> 0 only). */
  private readonly peerTotals = new Map<string, number>();
  private readonly handlers = new Set<(message: BusMessage) => void>();
  /** This worker's member counts (> 0 only): the table a new peer is sent. */
  private readonly local = new Map<string, number>();
  /** Of those channels, the count every peer and the agent confirmed they route and count by. */
  private readonly confirmed = new Map<string, number>();
  /** The latest confirmation round, per channel. */
  private readonly syncing = new Map<string, Sync>();
  /** The agent's sync rounds per channel (round-trips.ts), while one is in flight. */
  private readonly agentRounds = new Map<string, RoundTrips>();
  private readonly peers = new Map<number, Peer>();
  private readonly peerWaiters = new Set<() => void>();
  /** Workers the agent said exited (a link to one of them is not waited for). */
  private readonly gone = new Set<number>();
  private nextSyncId = 1;
  private droppedCount = 0;
  private undeliverableCount = 0;
  private readonly undeliverableLog = new LogThrottle();
  private closed = false;
  private nodesReady = true;

  /**
   * @param port the IPC channel to the agent
   * @param viaAgent whether messages also go to the agent (it is on a Redis bus, `--bus`)
   * @param logger where dropped records are reported (none: counted only)
   */
  /** Positions and history, asked of the agent (agent-sequencer.ts). */
  readonly log: ChannelLog;

  constructor(
    private readonly port: IpcPort,
    private readonly viaAgent = false,
    private readonly logger: Logger | null = null
  ) {
    this.log = {
      read: async (channel: string, since: Position | null, limit: number): Promise<LogRead> => {
        if (this.port.request === undefined) throw new Error('no agent to ask');
        const a = await this.port.request({ kind: 'history', channel, since, limit });
        if (a.status !== 200) throw new Error(`history unavailable (${a.status})`);
        return a.body as LogRead;
      }
    };
  }

  get ready(): boolean {
    return !this.closed && this.port.connected && this.nodesReady;
  }

  /** Deliveries not queued for a worker that had stopped reading (see MAX_PEER_UNSENT_BATCHES). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Records from peers or the agent dropped because they could not be read or delivered (see `receive`). */
  get undeliverable(): number {
    return this.undeliverableCount;
  }

  /** Links to other workers that are open. */
  get peerCount(): number {
    return this.peers.size;
  }

  publish(message: BusMessage): boolean {
    if (this.closed || !this.port.connected) return false;
    const channel = message.channel;
    // An event takes its position from the agent, which routes it to every worker (this one too).
    if (message.frame.type === 'event' && channel !== ALL_CHANNEL) return this.port.send({ t: 'sequence', channel, payload: serialize(message) });
    let payload: Uint8Array | null = null;
    if (this.viaAgent) {
      payload = serialize(message);
      if (!this.port.send({ t: 'publish', channel, payload })) return false;
    }
    for (const peer of this.peers.values()) {
      if (!peer.counts.has(channel)) continue;
      // A worker that stopped reading is the watchdog's to replace; the others still get it.
      if (peer.link.saturated) {
        this.droppedCount++;
        continue;
      }
      peer.link.deliver((payload ??= serialize(message)));
    }
    return true;
  }

  remoteCount(channel: string): number {
    return (this.peerTotals.get(channel) ?? 0) + (this.external.get(channel) ?? 0);
  }

  setLocalCount(channel: string, count: number): void {
    if (this.closed) return;
    if (count > 0) {
      this.local.set(channel, count);
      // Fewer members: a later rise must be confirmed again from this count.
      if ((this.confirmed.get(channel) ?? 0) > count) this.confirmed.set(channel, count);
      // A round in flight was sent before this drop: it cannot vouch for a rise after it.
      const pending = this.syncing.get(channel);
      if (pending !== undefined && pending.count > count) pending.count = count;
    } else {
      // A confirmation in flight covered the earlier interest, not the next one.
      this.local.delete(channel);
      this.confirmed.delete(channel);
      this.syncing.delete(channel);
    }
    this.port.setCount(channel, count);
    for (const peer of this.peers.values()) peer.link.control({ t: 'count', channel, count });
  }

  whenSubscribed(channel: string): Promise<void> | null {
    const count = this.local.get(channel);
    if (this.closed || !this.port.connected || count === undefined) return null;
    const known = this.confirmed.get(channel);
    if (known !== undefined && known >= count) return null;
    const pending = this.syncing.get(channel);
    if (pending !== undefined && (pending.count >= count || pending.open)) {
      // Asked in this turn: its records go out after this turn's counts, so it covers this one.
      pending.count = Math.max(pending.count, count);
      return pending.promise;
    }
    // The agent routes by the first member; with --bus the other nodes count by every one.
    const answers: Array<Promise<boolean>> = known === undefined || this.viaAgent ? [this.agentRound(channel)] : [];
    for (const peer of this.peers.values()) answers.push(peer.rounds.ask());
    if (answers.length === 0) {
      // Nobody else counts this worker's members.
      this.confirmed.set(channel, count);
      return null;
    }
    const sync: Sync = { count, open: true, promise: Promise.resolve() };
    process.nextTick(() => (sync.open = false));
    sync.promise = Promise.all(answers).then((ok) => {
      if (this.syncing.get(channel) === sync) this.syncing.delete(channel);
      // Unconfirmed: the next subscriber asks again.
      if (!ok.every(Boolean) || !this.local.has(channel)) return;
      if ((this.confirmed.get(channel) ?? 0) < sync.count) this.confirmed.set(channel, Math.min(sync.count, this.local.get(channel)!));
    });
    this.syncing.set(channel, sync);
    return sync.promise;
  }

  onMessage(handler: (message: BusMessage) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** A message from another worker, or routed here by the agent (`deliver`, with the event's position when the agent gave it). */
  receive(payload: Uint8Array, offset?: number, epoch?: string): void {
    if (this.closed) return;
    let message: BusMessage;
    try {
      message = deserialize(payload) as BusMessage;
    } catch (err) {
      this.drop(payload, err);
      return;
    }
    if (offset !== undefined && message.frame.type === 'event') {
      message.frame.offset = offset;
      message.frame.epoch = epoch;
    }
    for (const h of this.handlers) {
      try {
        h(message);
      } catch (err) {
        this.drop(payload, err);
      }
    }
  }

  /** Counts and reports (throttled) a record that could not be handled. */
  private drop(payload: Uint8Array, err: unknown): void {
    this.undeliverableCount++;
    const logger = this.logger;
    if (logger === null) return;
    this.undeliverableLog.run((suppressed) =>
      logger.warn(
        { bytes: payload.length, err: err instanceof Error ? err.message : String(err), undeliverable: this.undeliverableCount, suppressed },
        'bus: a message from another process could not be delivered; dropped'
      )
    );
  }

  /**
   * Takes this worker's end of a link to worker `key` (from the agent): sends it this
   * worker's whole table, then routes to it by the counts it sends back.
   */
  addPeer(key: number, socket: Socket): void {
    if (this.closed || this.peers.has(key)) {
      socket.destroy();
      return;
    }
    const counts = new Map<string, number>();
    const syncs = new Map<number, () => void>();
    const link: PeerLink = new PeerLink(key, socket, {
      deliver: (payload) => this.receive(payload),
      control: (item) => this.onControl(peer, item),
      closed: () => {
        if (this.peers.get(key) === peer) this.peers.delete(key);
        // Its members count no more.
        for (const [channel, n] of counts) this.addToPeerTotal(channel, -n);
        counts.clear();
        peer.ready = true;
        // A worker that is gone needs no more telling.
        for (const resolve of syncs.values()) resolve();
        syncs.clear();
        this.wakePeerWaiters();
      }
    });
    const peer: Peer = { link, counts, ready: false, syncs, rounds: new RoundTrips(() => this.syncPeer(peer), () => link.writes) };
    if (link.closed) return;
    this.peers.set(key, peer);
    for (const [channel, count] of this.local) link.control({ t: 'count', channel, count });
    link.control({ t: 'table-end' });
  }

  /**
   * Resolves once every worker in `keys` has sent its whole table or is gone, or after
   * `timeoutMs` (false then: a link the agent promised never came).
   */
  whenPeersReady(keys: readonly number[], timeoutMs: number): Promise<boolean> {
    const done = (): boolean => keys.every((k) => this.peers.get(k)?.ready === true || this.gone.has(k));
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.peerWaiters.delete(check);
        resolve(false);
      }, timeoutMs);
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.peerWaiters.delete(check);
        resolve(true);
      };
      this.peerWaiters.add(check);
    });
  }

  /** The agent says worker `key` exited: a link to it that never came is not waited for. */
  peerGone(key: number): void {
    this.gone.add(key);
    this.wakePeerWaiters();
  }

  /** Writes what every link has queued (a stopping worker's last words). */
  flushPeers(): void {
    for (const peer of this.peers.values()) peer.link.flush();
  }

  /** Writes waiting for the kernel on all links. */
  get unsentToPeers(): number {
    let n = 0;
    for (const peer of this.peers.values()) n += peer.link.unsentBatches;
    return n;
  }

  /** The agent's count of `channel`'s members on the other nodes (`remote`, with `--bus`). */
  setRemoteCount(channel: string, count: number): void {
    if (count > 0) this.external.set(channel, count);
    else this.external.delete(channel);
  }

  /** Whether the agent's bus to the other nodes (`--bus`) is ready (`bus-ready`). */
  setNodesReady(ready: boolean): void {
    this.nodesReady = ready;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    for (const peer of this.peers.values()) peer.link.close();
    this.peers.clear();
    for (const w of [...this.peerWaiters]) w();
  }

  /** A sync round with the agent for `channel`: one in flight at a time, the asks meanwhile share the next. */
  private agentRound(channel: string): Promise<boolean> {
    let rounds = this.agentRounds.get(channel);
    if (rounds === undefined) {
      rounds = new RoundTrips(() => this.port.sync(channel), () => this.port.writes);
      this.agentRounds.set(channel, rounds);
    }
    const answer = rounds.ask();
    const r = rounds;
    void answer.then(() => {
      if (r.idle && this.agentRounds.get(channel) === r) this.agentRounds.delete(channel);
    });
    return answer;
  }

  /** Asks a peer to confirm it read this worker's counts; false after SYNC_TIMEOUT_MS. */
  private syncPeer(peer: Peer): Promise<boolean> {
    if (peer.link.closed) return Promise.resolve(true);
    const id = this.nextSyncId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        peer.syncs.delete(id);
        resolve(false);
      }, SYNC_TIMEOUT_MS);
      timer.unref();
      peer.syncs.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
      peer.link.control({ t: 'sync', id });
    });
  }

  private onControl(peer: Peer, item: PeerControl): void {
    switch (item.t) {
      case 'count': {
        const count = item.count > 0 ? item.count : 0;
        this.addToPeerTotal(item.channel, count - (peer.counts.get(item.channel) ?? 0));
        if (count > 0) peer.counts.set(item.channel, count);
        else peer.counts.delete(item.channel);
        return;
      }
      case 'table-end':
        peer.ready = true;
        this.wakePeerWaiters();
        return;
      case 'sync':
        // The counts before it were read: they are in effect.
        peer.link.control({ t: 'synced', id: item.id });
        return;
      case 'synced': {
        const resolve = peer.syncs.get(item.id);
        peer.syncs.delete(item.id);
        resolve?.();
        return;
      }
    }
  }

  private addToPeerTotal(channel: string, delta: number): void {
    if (delta === 0) return;
    const t = (this.peerTotals.get(channel) ?? 0) + delta;
    if (t > 0) this.peerTotals.set(channel, t);
    else this.peerTotals.delete(channel);
  }

  private wakePeerWaiters(): void {
    for (const w of [...this.peerWaiters]) w();
  }
}
