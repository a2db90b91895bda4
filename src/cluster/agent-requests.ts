import type { Registry } from './registry.js';
import type { RedisBridge } from './redis-bridge.js';
import type { AgentSequencer } from './agent-sequencer.js';
import type { AgentMetrics } from './agent-metrics.js';
import type { WorkerHandle } from './worker-handle.js';
import { answerAgentQuery, type WorkersView } from './agent-answers.js';
import { answerAdminQuery } from './admin-answers.js';
import type { AdminQuery, AgentAnswer, AgentQuery, MetricsQuery } from './ipc-messages.js';

/** What the agent's answers to its workers' questions read (agent.ts gives it). */
export interface AgentRequestContext {
  readonly registry: Registry;
  readonly metrics: AgentMetrics;
  readonly sequencer: AgentSequencer;
  readonly redisBridge: RedisBridge | null;
  /** The agent's lifecycle state (`ready` before a reload is accepted). */
  state(): string;
  /** Live figures: what `GET /agent/workers` answers. */
  workersView(): WorkersView;
  /** How many worker slots the agent runs. */
  workerCount(): number;
  /** The rolling restart (agent.reload()). */
  reload(): Promise<void>;
  /** The live workers, to hand an operator's close to the one that holds the session. */
  workers(): Iterable<WorkerHandle>;
}

/** Answers a worker's question for its HTTP client. */
export function answerQuery(ctx: AgentRequestContext, query: AgentQuery): AgentAnswer {
  if (query.kind === 'admin') return answerAdmin(ctx, query.query);
  return answerAgentQuery(query, ctx.registry, () => ctx.workersView(), () => {
    const state = ctx.state();
    if (state !== 'ready') return { status: 503, body: { error: `agent is ${state}` } };
    void ctx.reload();
    return { status: 202, body: { status: 'reloading', workers: ctx.workerCount() } };
  }, ctx.redisBridge ?? null);
}

/** The admin API's questions (admin-api.ts); an operator's close goes to the worker that holds the session. */
function answerAdmin(ctx: AgentRequestContext, query: AdminQuery): AgentAnswer {
  return answerAdminQuery(query, ctx.registry, () => ctx.workersView(), (key, session) => {
    for (const h of ctx.workers()) if (h.key === key) h.push({ t: 'close-session', session });
  });
}

/**
 * A worker's `request` item: `/metrics` across the workers and a channel's history are
 * answered when ready; every other question at once. The answer goes back as `response`.
 */
export function answerRequest(ctx: AgentRequestContext, h: WorkerHandle, id: number, query: AgentQuery | MetricsQuery): void {
  if (query.kind === 'metrics') {
    void ctx.metrics.scrape().then(
      (scrape) => h.push({ t: 'response', id, answer: { status: 200, body: scrape } }),
      (err: unknown) => h.push({ t: 'response', id, answer: { status: 503, body: { error: (err as Error).message } } })
    );
  } else if (query.kind === 'history') {
    void ctx.sequencer.read(query.channel, query.since, query.limit).then(
      (body) => h.push({ t: 'response', id, answer: { status: 200, body } }),
      (err: unknown) => h.push({ t: 'response', id, answer: { status: 503, body: { error: err instanceof Error ? err.message : String(err) } } })
    );
  } else h.push({ t: 'response', id, answer: answerQuery(ctx, query) });
}
