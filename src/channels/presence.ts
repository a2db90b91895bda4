/**
 * Presence: who is in a channel, on every worker and node. One process answers from its
 * own hub and from what it knows of the others (`RemoteMembers`); a worker of an agent
 * asks the agent instead (its `PresenceSource` is in cluster/). The answer is bounded:
 * at most `limit` members, `truncated` when there were more.
 */
import type { MemberInfo } from '../protocol/frames.js';
import type { Identity } from '../auth/grants.js';
import type { ChannelMember } from './member.js';
import type { Hub } from './hub.js';

/** A presence answer: at most the limit asked for; `truncated` when members were left out. */
export interface PresenceList {
  members: MemberInfo[];
  truncated: boolean;
}

/**
 * Where a process gets a channel's members from.
 * Contract: resolves with at most `limit` members, each session once, and `truncated`
 * true exactly when the channel had more; null when it cannot answer now (the agent is
 * unavailable); never rejects. Members are those whose `subscribed` was sent; a change
 * on another process is seen after about one round trip to it (or to Redis).
 */
export interface PresenceSource {
  members(channel: string, limit: number): Promise<PresenceList | null>;
}

/** Members held by other processes, known synchronously (the Redis bus's cache, the agent's registry). */
export interface RemoteMembers {
  /** Appends members of `channel` to `out` until it holds `limit`; true when some were left out. */
  appendMembers(channel: string, limit: number, out: MemberInfo[]): boolean;
}

/** Who may ask for a channel's members: its members and holders of `admin`. */
export function mayAskPresence(identity: Identity, isMember: boolean): boolean {
  return isMember || identity.grants.has('admin');
}

/**
 * Appends the confirmed members (their `subscribed` was sent) among `members` to `out`
 * until it holds `limit`; true when some were left out.
 */
export function appendLocalMembers(members: Iterable<ChannelMember> | undefined, channel: string, limit: number, out: MemberInfo[]): boolean {
  if (members === undefined) return false;
  for (const m of members) {
    if (m.state !== 'open' || !m.channels.has(channel)) continue;
    if (out.length >= limit) return true;
    out.push({ session: m.id, user: m.userId });
  }
  return false;
}

/** The presence of a process that is not a worker: its hub's members, then the other nodes'. */
export function hubPresence(hub: Hub, remote: RemoteMembers | null): PresenceSource {
  return {
    members(channel: string, limit: number): Promise<PresenceList | null> {
      const out: MemberInfo[] = [];
      let truncated = appendLocalMembers(hub.channels.get(channel), channel, limit, out);
      if (!truncated && remote !== null) truncated = remote.appendMembers(channel, limit, out);
      return Promise.resolve({ members: out, truncated });
    }
  };
}
