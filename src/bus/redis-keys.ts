import { ALL_CHANNEL } from '../protocol/frames.js';

/**
 * The Redis layout of the bus (P = the prefix, default `zenconn:`):
 * - `P ch:<channel>`: pub/sub channel of a zenconn channel. A node SUBSCRIBEs to it while
 *   it has members of the channel (setLocalCount > 0) and UNSUBSCRIBEs at 0, so it only
 *   receives the traffic of channels in use on it.
 * - `P all`: pub/sub channel of broadcasts to `*`; every node subscribes, so each
 *   reaches every node once.
 * - `P ctl`: pub/sub control channel (count and membership changes, state rewrites,
 *   goodbyes: see redis-codec.ts). Every node subscribes.
 * - `P node:<node id>`: a hash holding a node's state, with a TTL (`nodeTtlMs`) refreshed
 *   every `heartbeatMs`: `seq` (its version), `c:<channel>` → member count,
 *   `m:<channel> <session id>` → the member's user as JSON (`null` or a string), for
 *   every member of every channel (private ones from their joined/left notices, public
 *   ones from `trackMember`): the `left` of a dead node's members and presence read them.
 *   A node that dies stops refreshing it, and its counts and members expire with it.
 * - `P nodes`: a set of node ids, to find the hashes; entries whose hash expired are
 *   removed by whichever node notices first.
 */
export class RedisKeys {
  readonly ctl: string;
  readonly all: string;
  readonly nodes: string;
  private readonly channelHead: string;

  constructor(readonly prefix: string) {
    this.ctl = `${prefix}ctl`;
    this.all = `${prefix}all`;
    this.nodes = `${prefix}nodes`;
    this.channelHead = `${prefix}ch:`;
  }

  /** The pub/sub channel of a zenconn channel (`*` has its own). */
  channel(channel: string): string {
    return channel === ALL_CHANNEL ? this.all : this.channelHead + channel;
  }

  /** The zenconn channel of a `P ch:` key; null for the other keys. */
  channelOf(key: string): string | null {
    return key.startsWith(this.channelHead) ? key.slice(this.channelHead.length) : null;
  }

  /** The hash of a node's state. */
  node(id: string): string {
    return `${this.prefix}node:${id}`;
  }
}
