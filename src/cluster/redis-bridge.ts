import { deserialize, serialize } from 'node:v8';
import type { Logger } from 'pino';
import { LogThrottle } from '../log.js';
import type { AuditSink } from '../audit/audit-sink.js';
import type { LogRead, OlderEvents } from '../bus/channel-log.js';
import type { Position } from '../protocol/frames.js';
import type { BusMessage } from '../bus/bus.js';
import type { MemberInfo } from '../protocol/frames.js';
import { RedisBus } from '../bus/redis-bus.js';
import type { BusRouter } from './bus-router.js';
import type { WorkerHandle } from './worker-handle.js';

export interface RedisBridgeOptions {
  /** Events kept per channel in Redis (`--history-size`). */
  historySize?: number;
  /** Events older than the Redis window, from the agent's audit trail (the nodes share the database). */
  olderEvents?: OlderEvents | null;
  /** How long, ms (`--history-ttl-ms`). */
  historyTtlMs?: number;
  url: string;
  prefix: string;
  /** The agent's server id: its node id on the Redis bus. */
  nodeId: string;
  logger: Logger;
  /** The agent's routing to its workers. */
  busRouter: BusRouter;
  /** The agent's audit sink (null with --no-audit, or before it is open). */
  audit: () => AuditSink | null;
}

/**
 * With `--bus`, the agent is one node of the Redis bus on behalf of all its workers:
 * their messages go out once (decoded once, encoded by the Redis bus), the other nodes'
 * come in once and are routed to the workers with members, member counts are summed
 * out and relayed in, and the bus's readiness is relayed to every worker (`/readyz`).
 */
export class RedisBridge {
  private readonly redisBus: RedisBus;
  private readonly busRouter: BusRouter;
  /** The readiness last told to the workers. */
  private readyTold = true;
  private readonly logger: Logger;
  /** Workers' messages dropped because they could not be read or encoded (logged as `undeliverable`). */
  private undeliverable = 0;
  private readonly undeliverableLog = new LogThrottle();

  constructor(options: RedisBridgeOptions) {
    this.busRouter = options.busRouter;
    this.logger = options.logger;
    const redisBus = new RedisBus({ url: options.url, prefix: options.prefix, nodeId: options.nodeId, logger: options.logger, historySize: options.historySize, historyTtlMs: options.historyTtlMs, olderEvents: options.olderEvents ?? null });
    this.redisBus = redisBus;
    // Other nodes' messages go to the workers with members, as a worker's would.
    redisBus.onMessage((m) => {
      const f = m.frame;
      if (m.announced && (f.type === 'left' || f.type === 'joined')) {
        // Recorded once, here, for all the workers (which get it as a plain message).
        this.busRouter.publish(null, m.channel, serialize({ channel: m.channel, frame: f, exclude: m.exclude }));
        const recipients = this.busRouter.total(m.channel);
        options.audit()?.record({ messageId: null, at: new Date(), sessionId: f.data.session, userId: f.data.user, direction: 'out', type: f.type, channel: f.channel, payload: f.data, recipients });
        return;
      }
      this.busRouter.publish(null, m.channel, serialize(m));
    });
    redisBus.onRemoteCountChange((channel, count) => this.busRouter.setExternal(channel, count));
  }

  /** Whether the bus was ready when the workers were last told. */
  get ready(): boolean {
    return this.readyTold;
  }

  /** Joins the bus (not ready until Redis answers; it retries in the background). */
  async start(): Promise<void> {
    await this.redisBus.start();
    this.readyTold = this.redisBus.ready;
  }

  /** Tells every worker when the bus's readiness changed. */
  relayReadiness(workers: Iterable<WorkerHandle>): void {
    if (this.redisBus.ready === this.readyTold) return;
    this.readyTold = this.redisBus.ready;
    for (const h of workers) h.push({ t: 'bus-ready', ready: this.readyTold });
  }

  /** A worker's message (a v8-serialized `BusMessage`) for the other nodes. */
  publishPayload(payload: Uint8Array, sequenced?: (position: Position | null) => void): void {
    try {
      this.redisBus.publish(deserialize(payload) as BusMessage, sequenced);
    } catch (err) {
      // A worker's record the agent cannot read or encode is dropped, never thrown out of the loop.
      this.undeliverable++;
      const logger = this.logger;
      this.undeliverableLog.run((suppressed) =>
        logger.warn({ err: err instanceof Error ? err.message : String(err), undeliverable: this.undeliverable, suppressed }, 'Redis bridge: a worker message could not be published; dropped')
      );
    }
  }

  publish(message: BusMessage): void {
    this.redisBus.publish(message);
  }

  /** A channel's events from Redis, the sequencer and hot history with `--bus`. */
  read(channel: string, since: Position | null, limit: number): Promise<LogRead> {
    return this.redisBus.log.read(channel, since, limit);
  }

  /** The agent's members of `channel` (all its workers') changed: the other nodes are told. */
  countChanged(channel: string): void {
    this.redisBus.setLocalCount(channel, this.busRouter.total(channel));
  }

  whenSubscribed(channel: string): Promise<void> | null {
    return this.redisBus.whenSubscribed(channel);
  }

  remoteCount(channel: string): number {
    return this.redisBus.remoteCount(channel);
  }

  /** A public channel's member on one of the workers came or went (presence on the other nodes). */
  trackMember(type: 'joined' | 'left', channel: string, member: MemberInfo): void {
    this.redisBus.trackMember(type, channel, member);
  }

  /** The other nodes' members of `channel` (presence): see `RedisBus.appendMembers`. */
  appendMembers(channel: string, limit: number, out: MemberInfo[]): boolean {
    return this.redisBus.appendMembers(channel, limit, out);
  }

  close(): Promise<void> {
    return this.redisBus.close();
  }
}
