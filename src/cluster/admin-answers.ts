import type { AdminQuery, AgentAnswer } from './ipc-messages.js';
import type { AdminCounters, Registry } from './registry.js';
import type { WorkersView } from './agent-answers.js';

/** What `GET /api/admin/overview` answers, before the HTTP side adds the nodes (admin-api.ts). */
export interface AdminOverview extends WorkersView {
  workers: Array<WorkersView['workers'][number] & { restarts: number }>;
  /** Counters since the agent (or `serve`) started: the page computes rates from two polls. */
  counters: AdminCounters;
  /** Live sessions of this node. */
  sessions: number;
  /** Channels with members on this node: how many, and those with most members. */
  channels: { total: number; top: Array<{ channel: string; members: number }> };
}

/**
 * Answers the admin API's questions from the registry (the agent's, or the one a single
 * process keeps of itself). `close(worker, session)` closes a session on the worker that
 * holds it: a message to that worker under an agent, a direct call in one process.
 */
export function answerAdminQuery(query: AdminQuery, registry: Registry, view: () => WorkersView, close: (worker: number, session: string) => void): AgentAnswer {
  switch (query.kind) {
    case 'overview': {
      const v = view();
      const workers = v.workers.map((w) => ({ ...w, restarts: registry.restartsOf(w.slot) }));
      const body: AdminOverview = { ...v, workers, counters: registry.counters(), sessions: registry.totalSessions, channels: registry.channelCounts(query.channels) };
      return { status: 200, body };
    }
    case 'sessions':
      return { status: 200, body: registry.findSessions(query.q, query.limit) };
    case 'close': {
      const worker = registry.workerOf(query.session);
      if (worker === null) return { status: 404, body: { error: 'no such session' } };
      close(worker, query.session);
      return { status: 202, body: { session: query.session, status: 'closing' } };
    }
  }
}
