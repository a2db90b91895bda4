import type { PresenceList, PresenceSource } from '../channels/presence.js';
import type { AgentAnswer, AgentQuery } from './ipc-messages.js';

/**
 * A worker's presence: it asks the agent, whose live registry holds every worker's
 * members (and, with `--bus`, whose Redis bus knows the other nodes'). One IPC round
 * trip; null (answered `presence unavailable`) when the agent does not answer.
 */
export function workerPresence(ask: (query: AgentQuery) => Promise<AgentAnswer>): PresenceSource {
  return {
    async members(channel: string, limit: number): Promise<PresenceList | null> {
      const a = await ask({ kind: 'presence', channel, limit });
      if (a.status !== 200) return null;
      return a.body as PresenceList;
    }
  };
}
