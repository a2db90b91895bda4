import type { AgentAnswer, AgentQuery } from './ipc-messages.js';
import type { Registry, WorkerView } from './registry.js';
import type { RemoteMembers } from '../channels/presence.js';
import type { MemberInfo } from '../protocol/frames.js';

/** The agent process, as `GET /agent/workers` shows it. */
export interface AgentProcessView {
  id: string;
  pid: number;
  state: string;
  startedAt: string;
  uptimeMs: number;
  /** Configured workers (0: the agent serves sessions itself). */
  workers: number;
  rssBytes: number;
  /** Connections refused by the agent-wide `--max-connections`. */
  refusedConnections: number;
}

/** What `GET /agent/workers` answers. */
export interface WorkersView {
  agent: AgentProcessView;
  workers: WorkerView[];
  totals: { workers: number; sessions: number; messagesInPerSec: number; messagesOutPerSec: number; rssBytes: number };
}

/** The agent process's own figures (this process). */
export interface AgentSelf {
  id: string;
  state: string;
  /** Epoch ms. */
  startedAt: number;
  workers: number;
  /** Connections refused by the agent-wide cap. Default 0. */
  refusedConnections?: number;
}

/** Live figures of the agent and its workers, with their totals. */
export function workersView(registry: Registry, self: AgentSelf, now = Date.now()): WorkersView {
  const workers = registry.workers(now);
  const totals = { workers: workers.length, sessions: 0, messagesInPerSec: 0, messagesOutPerSec: 0, rssBytes: 0 };
  for (const w of workers) {
    totals.sessions += w.sessions;
    totals.messagesInPerSec += w.messagesInPerSec;
    totals.messagesOutPerSec += w.messagesOutPerSec;
    totals.rssBytes += w.rssBytes;
  }
  return {
    agent: {
      id: self.id,
      pid: process.pid,
      state: self.state,
      startedAt: new Date(self.startedAt).toISOString(),
      uptimeMs: now - self.startedAt,
      workers: self.workers,
      rssBytes: process.memoryUsage.rss(),
      refusedConnections: self.refusedConnections ?? 0
    },
    workers,
    totals
  };
}

/**
 * Answers a question for `/agent/*` (or a worker's presence request) from the registry;
 * `reload` starts the rolling restart (or what stands for it) and gives the answer;
 * `remote`: the other nodes' members (with `--bus`).
 */
export function answerAgentQuery(query: AgentQuery, registry: Registry, view: () => WorkersView, reload: () => AgentAnswer, remote: RemoteMembers | null = null): AgentAnswer {
  switch (query.kind) {
    case 'workers':
      return { status: 200, body: view() };
    case 'sessions':
      return { status: 200, body: registry.sessions(query) };
    case 'reload':
      return reload();
    case 'history':
      // Answered by the agent's sequencer (agent-sequencer.ts), asynchronously.
      return { status: 400, body: { error: 'history is asked over the worker link' } };
    case 'presence': {
      // Every worker's members from the live registry, then the other nodes'.
      const members: MemberInfo[] = [];
      let truncated = registry.appendMembers(query.channel, query.limit, members);
      if (!truncated && remote !== null) truncated = remote.appendMembers(query.channel, query.limit, members);
      return { status: 200, body: { members, truncated } };
    }
    case 'admin':
      // The agent answers these itself, with answerAdminQuery (admin-answers.ts).
      return { status: 400, body: { error: 'admin questions are answered by the agent' } };
  }
}
