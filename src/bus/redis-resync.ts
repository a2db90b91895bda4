import type { Logger } from 'pino';
import type { BusMessage } from './bus.js';
import { PRIVATE_PREFIX, type ServerFrame } from '../protocol/frames.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import type { NodesCache } from './redis-nodes-cache.js';
import type { OwnState } from './redis-own-state.js';

/** What the resync is given by the bus (redis-bus.ts). */
export interface ResyncParts {
  link: RedisLink;
  keys: RedisKeys;
  nodeId: string;
  /** TTL of a node's hash; also the grace after this node's (re)connection. */
  nodeTtlMs: number;
  others: NodesCache;
  own: OwnState;
  logger: Logger;
  /** Whether the bus is ready (a periodic resync runs only then). */
  ready: () => boolean;
  /** Hands a message to the bus's handlers (a dead node's `left` notices). */
  deliver: (message: BusMessage) => void;
}

/**
 * The other nodes' liveness: every `resyncMs` the `seq` of every node in Redis is
 * compared with the cache, what was missed re-read, and a node whose hash expired is
 * declared dead (its members of private channels announced as `left` here). For
 * `nodeTtlMs` after this node (re)connects nobody is declared dead.
 */
export class Resync {
  /** Until then this node declares nobody dead (the others may still be rewriting their hashes). */
  private graceUntil = 0;
  private busy = false;

  constructor(private readonly p: ResyncParts) {}

  /** After a restore: the grace starts, then a first resync. */
  restored(): Promise<void> {
    this.graceUntil = Date.now() + this.p.nodeTtlMs;
    return this.resync();
  }

  /** Forgets a node; when it died, its private-channel members are announced as `left` here. */
  dropNode(id: string, dead: boolean): void {
    const members = this.p.others.drop(id);
    if (members === undefined || !dead) return;
    let lefts = 0;
    for (const [channel, sessions] of members) {
      // Public channels' members are kept for presence only: nobody is told they left.
      if (!channel.startsWith(PRIVATE_PREFIX) || !this.p.own.has(channel)) continue;
      for (const [session, user] of sessions) {
        const frame: ServerFrame = { type: 'left', channel, data: { session, user } };
        this.p.deliver({ channel, frame, exclude: null, announced: true });
        lefts++;
      }
    }
    this.p.logger.warn({ node: id, lefts }, 'Redis bus: a node stopped answering; its members are gone');
  }

  async periodic(): Promise<void> {
    if (!this.p.ready() || this.busy) return;
    this.busy = true;
    try {
      await this.resync();
    } catch (err) {
      this.p.logger.debug({ err: (err as Error).message }, 'Redis bus: resync failed');
    } finally {
      this.busy = false;
    }
  }

  /**
   * Compares every node's `seq` in Redis with the cache: re-reads the nodes that moved
   * on, forgets (as dead) those whose hash expired — but not within `nodeTtlMs` of this
   * node's own reconnection, when the others may still be rewriting theirs.
   */
  private async resync(): Promise<void> {
    const { link, keys, others } = this.p;
    const ids = new Set(await link.guard(link.pub.smembers(keys.nodes)));
    for (const id of others.ids()) ids.add(id);
    ids.delete(this.p.nodeId);
    if (ids.size === 0) return;
    const list = [...ids];
    const p = link.pub.pipeline();
    for (const id of list) p.hget(keys.node(id), 'seq');
    const res = await link.exec(p);
    const fetches: Array<Promise<void>> = [];
    const mayDeclareDead = Date.now() >= this.graceUntil;
    list.forEach((id, i) => {
      const v = res[i];
      if (v === null || v === undefined) {
        if (!mayDeclareDead) return;
        this.dropNode(id, true);
        link.pub.srem(keys.nodes, id).catch(() => undefined);
        return;
      }
      if (others.behind(id, Number(v))) fetches.push(others.fetch(id));
    });
    await Promise.all(fetches);
  }
}
