import type { Transport } from '../transport/transport.js';
import { ALL_CHANNEL, PRIVATE_PREFIX, type EventFrame, type Position, type ServerFrame } from '../protocol/frames.js';
import type { ChannelLog, LogRead } from '../bus/channel-log.js';
import { RecoveryTable, sendSubscribed } from './recovery.js';
import { fanOut } from './fan-out.js';
import { LocalChannelLog } from './local-log.js';
import { newId } from '../protocol/ids.js';
import type { ChannelMember } from './member.js';
import type { Bus, BusMessage } from '../bus/bus.js';
import type { AuditEntry, AuditSink } from '../audit/audit-sink.js';
import { PendingOutRows } from './pending-out.js';
import type { Identity } from '../auth/grants.js';
import { verifyChannelSignature } from '../auth/channel-signature.js';

/** Told of every membership change (the agent's live registry listens here). */
export interface HubObserver<M extends ChannelMember = ChannelMember> {
  sessionOpened(session: M): void;
  sessionClosed(session: M, code: number): void;
  subscribed(session: M, channel: string): void;
  unsubscribed(session: M, channel: string): void;
}

export interface HubOptions<M extends ChannelMember = ChannelMember> {
  transport: Transport;
  bus: Bus;
  audit: AuditSink;
  /** Key of private-channel signatures; null = only the `private` grant admits. */
  channelSecret: string | null;
  maxChannelsPerSession: number;
  observer?: HubObserver<M> | null;
  /** The channels' positions and hot history (bus/channel-log.ts). Default: the bus's, else in memory (1000 events, 5 min). */
  log?: ChannelLog;
  /** Most events a `since` subscribe replays (`--recovery-max`); more answers recovered:false. Default 1000. */
  recoveryMax?: number;
  /** Most events one `history` answer holds (`--recovery-max`). Default 1000. */
  historyLimit?: number;
  /** How long an event sequenced elsewhere waits for its position before its out row is recorded without one (pending-out.ts). */
  positionWaitMs?: number;
}

/** What a broadcast did: the event id and how many sessions it went to. */
export interface BroadcastResult {
  id: string;
  count: number;
}

/**
 * Why a broadcast was refused (answered with an `error` frame or an HTTP status).
 * `bus unavailable`: the bus to the other nodes is down and holds no more; nothing was sent.
 * `audit full`: the audit storage is past `--audit-max-bytes`; nothing was sent or recorded
 * (the refusals are counted in the audit's `audit.resumed` row).
 */
export type BroadcastRefusal = 'not subscribed' | 'forbidden' | 'bus unavailable' | 'audit full';

/**
 * The channel registry and fan-out of one process. Members are kept in a map of sets,
 * so a message reaches its recipients without scanning sessions; each message is
 * encoded once per protocol and the same prepared bytes are written to every recipient.
 * `M` is the member type of the layer above (the session), handed back to it unchanged.
 */
export class Hub<M extends ChannelMember = ChannelMember> {
  /** Every open session of this process. */
  readonly sessions = new Map<string, M>();
  /** Channel → its local members. A channel with no member is deleted. */
  readonly channels = new Map<string, Set<M>>();
  /** Events written to members since start (one add per fan-out, for the metrics). */
  delivered = 0;
  private readonly transport: Transport;
  private readonly bus: Bus;
  private readonly audit: AuditSink;
  /** Out rows of events sequenced elsewhere, waiting for their position. */
  private readonly pendingOut: PendingOutRows;
  private readonly channelSecret: string | null;
  private readonly maxChannels: number;
  private readonly observer: HubObserver<M> | null;
  private readonly offBus: () => void;
  private readonly log: ChannelLog;
  private readonly recoveryMax: number;
  private readonly historyLimit: number;
  private readonly recoveries: RecoveryTable<M>;

  constructor(options: HubOptions<M>) {
    this.log = options.log ?? options.bus.log ?? new LocalChannelLog({ size: 1000, ttlMs: 300000 });
    this.recoveryMax = options.recoveryMax ?? 1000;
    this.historyLimit = options.historyLimit ?? 1000;
    this.recoveries = new RecoveryTable(Math.max(1000, this.recoveryMax));
    this.transport = options.transport;
    this.bus = options.bus;
    this.audit = options.audit;
    this.pendingOut = new PendingOutRows(this.audit, options.positionWaitMs);
    this.channelSecret = options.channelSecret;
    this.maxChannels = options.maxChannelsPerSession;
    this.observer = options.observer ?? null;
    this.offBus = this.bus.onMessage((m) => this.deliverFromBus(m));
  }

  /** Adds an accepted session (before any frame is handled). */
  add(session: M): void {
    this.sessions.set(session.id, session);
    this.bus.setLocalCount(ALL_CHANNEL, this.sessions.size);
    this.observer?.sessionOpened(session);
  }

  /** Removes a closed session: leaves its channels (with `left` notices) and the registry. */
  remove(session: M, code: number): void {
    if (!this.sessions.delete(session.id)) return;
    for (const channel of session.channels) {
      this.recoveries.end(session, channel);
      this.leave(session, channel, true);
    }
    session.channels.clear();
    if (session.subscribing !== null) {
      this.recoveries.end(session, session.subscribing);
      this.leave(session, session.subscribing, false);
    }
    session.subscribing = null;
    this.bus.setLocalCount(ALL_CHANNEL, this.sessions.size);
    this.observer?.sessionClosed(session, code);
  }

  /**
   * Handles `subscribe`: answers `subscribed`, `unauthorized` or an error.
   *
   * `subscribed` means the subscription is in effect everywhere: a message sent after
   * it, from any worker or node, reaches the session and counts it. The bus may need a
   * moment (one round trip to the other workers, the agent or Redis) to route the
   * channel here and have the new count read; meanwhile the session is a member but
   * HELD: what is written to it waits, and so do the frames it sends, so it sees
   * `subscribed` first and then everything in order.
   */
  subscribe(session: M, channel: string, token: string | undefined, since: Position | null = null): void {
    if (session.channels.has(channel)) {
      session.send({ type: 'subscribed', channel });
      this.auditOut(session, 'subscribed', channel, null);
      return;
    }
    const isPrivate = channel.startsWith(PRIVATE_PREFIX);
    if (isPrivate && !this.mayJoinPrivate(session, channel, token)) {
      session.send({ type: 'unauthorized', channel });
      this.auditOut(session, 'unauthorized', channel, null);
      return;
    }
    if (session.channels.size >= this.maxChannels) {
      this.sendError(session, channel, [`too many channels (at most ${this.maxChannels})`]);
      return;
    }
    let members = this.channels.get(channel);
    if (members === undefined) {
      members = new Set();
      this.channels.set(channel, members);
    }
    members.add(session);
    // From now on its live events are kept aside until its start position is known.
    this.recoveries.start(session, channel);
    this.bus.setLocalCount(channel, members.size);
    const wait = this.bus.whenSubscribed(channel);
    if (wait === null) {
      this.subscribedNow(session, channel, since);
      return;
    }
    session.subscribing = channel;
    session.hold();
    void wait.then(() => {
      // Closed meanwhile: `remove` took it out of the members already.
      if (session.subscribing !== channel || session.state !== 'open') return;
      session.subscribing = null;
      session.release(() => this.subscribedNow(session, channel, since));
    });
  }

  /**
   * The subscription is in effect: reads where the session starts (and, with `since`,
   * what it missed) while its live events are kept aside (recovery.ts), then answers.
   */
  private subscribedNow(session: M, channel: string, since: Position | null): void {
    session.channels.add(channel);
    const entry = this.recoveries.of(channel)?.get(session);
    let read: LogRead | Promise<LogRead>;
    try {
      read = this.log.read(channel, since, since === null ? 0 : this.recoveryMax + 1);
    } catch {
      read = Promise.reject(new Error('history unavailable'));
    }
    if (!(read instanceof Promise)) {
      this.answerSubscribed(session, channel, since, read);
      return;
    }
    session.hold();
    read.then(
      (r) => r,
      () => null
    ).then((r) => {
      if (session.state !== 'open' || !session.channels.has(channel) || this.recoveries.of(channel)?.get(session) !== entry) return;
      session.release(() => this.answerSubscribed(session, channel, since, r));
    });
  }

  /** Answers `subscribed` with the start position and what follows it (recovery.ts), then records and announces the join. */
  private answerSubscribed(session: M, channel: string, since: Position | null, r: LogRead | null): void {
    sendSubscribed(this.recoveries, session, channel, since, r, this.recoveryMax);
    this.auditOut(session, 'subscribed', channel, null);
    this.observer?.subscribed(session, channel);
    if (channel.startsWith(PRIVATE_PREFIX)) this.notice('joined', channel, session);
    else this.bus.trackMember?.('joined', channel, { session: session.id, user: session.userId });
  }

  /**
   * Handles `history`: for whoever may subscribe to the channel (a private channel's
   * members and holders of the `private` grant), the events after `since`, at most
   * `limit` (default and bound `historyLimit`). A refusal is an `error` frame `forbidden`.
   */
  history(session: M, channel: string, since: Position | null, limit: number | null): void {
    if (channel.startsWith(PRIVATE_PREFIX) && !session.channels.has(channel) && !session.identity.grants.has('private')) {
      this.sendError(session, channel, ['forbidden']);
      return;
    }
    const n = Math.min(limit ?? this.historyLimit, this.historyLimit);
    const answer = (r: LogRead | null): void => {
      if (session.state !== 'open') return;
      if (r === null) this.sendError(session, channel, ['history unavailable']);
      else session.send({ type: 'history', channel, events: r.events, offset: r.offset, epoch: r.epoch, complete: r.complete });
    };
    let read: LogRead | Promise<LogRead>;
    try {
      read = this.log.read(channel, since, n);
    } catch {
      answer(null);
      return;
    }
    if (read instanceof Promise) read.then(answer, () => answer(null));
    else answer(read);
  }

  /** Handles `unsubscribe`: idempotent, always answers `unsubscribed`. */
  unsubscribe(session: M, channel: string): void {
    this.recoveries.end(session, channel);
    if (session.channels.delete(channel)) {
      this.leave(session, channel, true);
      this.observer?.unsubscribed(session, channel);
    }
    session.send({ type: 'unsubscribed', channel });
    this.auditOut(session, 'unsubscribed', channel, null);
  }

  /**
   * Sends an event to every member of `channel` but the sender (every session but the
   * sender for `*`), here and on other processes. `sender` is null for the HTTP API.
   * Returns the refusal instead when the sender may not do it. `reply` gets the result
   * once the audit rows are durable; `hasBinary` is the decoder's hint (see ServerFrame).
   */
  broadcast(
    sender: M | null,
    identity: Identity,
    channel: string,
    data: unknown,
    reply: ((result: BroadcastResult) => void) | null,
    hasBinary?: boolean
  ): BroadcastResult | BroadcastRefusal {
    if (channel === ALL_CHANNEL) {
      if (!identity.grants.has('broadcast')) return 'forbidden';
    } else if (!identity.grants.has('publish') && (sender === null || !sender.channels.has(channel))) {
      return 'not subscribed';
    }
    if (this.audit.refuseBroadcast()) return 'audit full';
    const id = newId();
    const from = sender?.id ?? null;
    const members = channel === ALL_CHANNEL ? this.sessions.values() : this.channels.get(channel);
    const frame: EventFrame = hasBinary === undefined ? { type: 'event', channel, data, from, id } : { type: 'event', channel, data, from, id, hasBinary };
    // The position is given before the frame is encoded: here when this process is the
    // sequencer, otherwise by the bus, which then delivers it back here too.
    const sequenced = channel !== ALL_CHANNEL && this.log.append === undefined;
    if (channel !== ALL_CHANNEL && !sequenced) this.log.append!(frame);
    // Other processes first: when the bus refuses, the broadcast is refused as a whole
    // (no local delivery either), so the sender knows nobody got it and may retry.
    // Sequenced elsewhere, the out row waits for the position (pending-out.ts) and the
    // answer with it; not while the bus holds messages (it is down): those go as before.
    const awaitPosition = sequenced && this.bus.ready;
    const told = awaitPosition ? (p: Position | null): void => this.pendingOut.settle(id, p) : undefined;
    if (!this.bus.publish({ channel, frame, exclude: from }, told)) return 'bus unavailable';
    const local = channel === ALL_CHANNEL ? this.sessions.size : (members as Set<M> | undefined)?.size ?? 0;
    const count = local - (sender !== null && (channel === ALL_CHANNEL || sender.channels.has(channel)) ? 1 : 0) + this.bus.remoteCount(channel);
    const at = new Date();
    const userId = identity.userId;
    this.audit.record({ messageId: id, at, sessionId: from, userId, direction: 'in', type: 'broadcast', channel, payload: data, recipients: null });
    const out: AuditEntry = { messageId: id, at, sessionId: from, userId, direction: 'out', type: 'event', channel, payload: data, recipients: count };
    if (frame.offset !== undefined) {
      out.offset = frame.offset;
      out.epoch = frame.epoch;
    }
    const result = { id, count };
    const answer = reply === null ? null : (): void => reply(result);
    if (awaitPosition) this.pendingOut.add(id, out, answer);
    else {
      this.audit.record(out);
      // The sender's answer goes first: queued behind the fan-out it would arrive late
      // and split the turn's writes.
      if (answer !== null) this.audit.afterDurable(answer);
    }
    if (!sequenced) this.fanOut(members, frame, from);
    return result;
  }

  /** Sends an `error` frame (and records it). */
  sendError(session: M, channel: string, errors: string[]): void {
    session.send({ type: 'error', channel, errors });
    this.auditOut(session, 'error', channel, errors);
  }

  /** Stops listening to the bus. */
  close(): void {
    this.offBus();
    this.pendingOut.close();
    this.log.close?.();
  }

  private mayJoinPrivate(session: M, channel: string, token: string | undefined): boolean {
    if (session.identity.grants.has('private')) return true;
    if (this.channelSecret === null || token === undefined) return false;
    return verifyChannelSignature(this.channelSecret, session.id, channel, token);
  }

  /** Takes the session out of the channel's members; `notice`: tell a private channel's members (`left`). */
  private leave(session: M, channel: string, notice: boolean): void {
    const members = this.channels.get(channel);
    if (members === undefined) return;
    members.delete(session);
    if (members.size === 0) this.channels.delete(channel);
    this.bus.setLocalCount(channel, members.size);
    if (notice && channel.startsWith(PRIVATE_PREFIX)) this.notice('left', channel, session);
    else if (notice) this.bus.trackMember?.('left', channel, { session: session.id, user: session.userId });
  }

  /** `joined`/`left` to every other member of a private channel, here and elsewhere. */
  private notice(type: 'joined' | 'left', channel: string, session: M): void {
    const data = { session: session.id, user: session.userId };
    const frame: ServerFrame = { type, channel, data };
    const count = this.fanOut(this.channels.get(channel), frame, session.id) + this.bus.remoteCount(channel);
    this.bus.publish({ channel, frame, exclude: session.id });
    this.audit.record({
      messageId: null,
      at: new Date(),
      sessionId: session.id,
      userId: session.userId,
      direction: 'out',
      type,
      channel,
      payload: data,
      recipients: count
    });
  }

  private deliverFromBus(message: BusMessage): void {
    const members = message.channel === ALL_CHANNEL ? this.sessions.values() : this.channels.get(message.channel);
    const n = this.fanOut(members, message.frame, message.exclude);
    const f = message.frame;
    // This process's own event, back from its sequencer with its position.
    if (this.pendingOut.size !== 0 && f.type === 'event' && f.offset !== undefined) this.pendingOut.settle(f.id, { offset: f.offset, epoch: f.epoch ?? '' });
    if (message.announced && (f.type === 'left' || f.type === 'joined')) {
      this.audit.record({ messageId: null, at: new Date(), sessionId: f.data.session, userId: f.data.user, direction: 'out', type: f.type, channel: f.channel, payload: f.data, recipients: n });
    }
  }

  /** Writes `frame` to every open member but `excludeId` (fan-out.ts); counts it in `delivered`. */
  private fanOut(members: Iterable<M> | undefined, frame: ServerFrame, excludeId: string | null): number {
    const n = fanOut(this.transport, this.recoveries, members, frame, excludeId);
    this.delivered += n;
    return n;
  }

  private auditOut(session: M, type: string, channel: string, payload: unknown): void {
    this.audit.record({
      messageId: null,
      at: new Date(),
      sessionId: session.id,
      userId: session.userId,
      direction: 'out',
      type,
      channel,
      payload,
      recipients: 1
    });
  }
}
