import type { Config } from '../config/options.js';
import type { ProtocolName } from '../protocol/codec.js';
import type { MetricJson } from '../metrics/node-metrics.js';
import type { Position } from '../protocol/frames.js';

/**
 * Every message between the agent and a worker, over the `child_process` IPC channel
 * with `serialization: 'advanced'` (structured clone: Uint8Array, Date and Map survive).
 *
 * Both sides send a `batch` per event-loop turn rather than one message per item: one
 * write and one (de)serialization per turn however many sessions subscribed or
 * messages were published. Items inside a batch keep their order, and the channel is
 * FIFO, so everything one worker sends reaches the agent (and what the agent routes
 * reaches each worker) in the order it was produced. The only messages outside a batch
 * are `conn` and `peer`, which carry a socket handle. Channel messages between workers
 * do not pass here: they take the direct links (peer-link.ts).
 */

/** What the agent knows about one session (from the worker that holds it). */
export interface SessionInfo {
  id: string;
  remoteAddr: string;
  user: string | null;
  protocol: ProtocolName;
  /** Epoch ms. */
  connectedAt: number;
}

/** A worker's figures, sent every second; the message is also its heartbeat. */
export interface WorkerStats {
  sessions: number;
  channels: number;
  messagesInPerSec: number;
  messagesOutPerSec: number;
  heapUsedBytes: number;
  rssBytes: number;
  /** Worst event-loop delay seen since the previous report, ms. */
  loopLagMs: number;
  /** Open direct links to other workers. */
  peers: number;
  /** Connections and requests refused by the worker's flood limits since it started, by reason (http/admission.ts). */
  refused?: Record<string, number>;
  /** Records from other workers or the agent dropped since start because they could not be read or delivered. */
  undeliverable: number;
  /** `--accept shared`: connections it took at its share of `--max-connections` and passed to the agent to place, since start. */
  forwarded?: number;
  /** Counters since the worker started (the dashboard computes rates from them). */
  totals?: WorkerTotals;
}

/** A process's message counters since it started (its sessions' and its closed sessions'); they only grow. */
export interface WorkerTotals {
  messagesIn: number;
  messagesOut: number;
}

/** What the admin API (admin-api.ts) asks of whoever knows every session of the node. */
export type AdminQuery =
  /** Workers, counters and the channels with most members (at most `channels` of them). */
  | { kind: 'overview'; channels: number }
  /** Sessions whose id, user, address or a channel contains `q` (all when empty), at most `limit`. */
  | { kind: 'sessions'; q: string; limit: number }
  /** Close session `session` with 4002, on whichever worker holds it. */
  | { kind: 'close'; session: string };

/** What a worker asks the agent on behalf of an HTTP request it answers. */
export type AgentQuery =
  | { kind: 'workers' }
  | { kind: 'sessions'; channel: string | null; user: string | null; limit: number }
  | { kind: 'reload' }
  /** A channel's events after `since` (answered by the agent's sequencer: body is a `LogRead`). */
  | { kind: 'history'; channel: string; since: Position | null; limit: number }
  /** A channel's members on every worker (and node, with `--bus`): 200 with a `PresenceList`. */
  | { kind: 'presence'; channel: string; limit: number }
  | { kind: 'admin'; query: AdminQuery };

/** A worker's request for the whole agent's metrics (its `GET /metrics`); answered with a `Scrape` body. */
export interface MetricsQuery {
  kind: 'metrics';
}

/** The agent's answer to an `AgentQuery`: an HTTP status and a JSON body. */
export interface AgentAnswer {
  status: number;
  body: unknown;
}

/** Worker → agent, inside a `batch`. */
export type WorkerItem =
  /** First thing a worker says: its server id (before its row is written) and pid. */
  | { t: 'hello'; serverId: string; pid: number }
  /** The node is listening (on its direct port, if any) and takes connections. */
  | { t: 'ready'; port: number | null }
  /** `--accept shared`: it listens on the agent's socket now (sent once per `listen`). */
  | { t: 'listening' }
  /** With `--bus`: a channel message for the other nodes (`payload` is a v8-serialized `BusMessage`); the workers got it directly. */
  | { t: 'publish'; channel: string; payload: Uint8Array }
  /** An event on a channel (not `*`) for the agent to sequence and route to every worker with members, this one included (agent-sequencer.ts). */
  | { t: 'sequence'; channel: string; payload: Uint8Array }
  /** This worker's member count of a channel (`*` = its sessions). Coalesced per turn. */
  | { t: 'count'; channel: string; count: number }
  /** Answer `synced` once this worker's interest in `channel` (its last `count`) is in effect on every node. */
  | { t: 'sync'; id: number; channel: string }
  | { t: 'open'; session: SessionInfo }
  | { t: 'close'; session: string; code: number }
  | { t: 'sub'; session: string; channel: string }
  | { t: 'unsub'; session: string; channel: string }
  | { t: 'stats'; stats: WorkerStats }
  /** A handed-over connection carried a plain request, opened a session (sent right after its `open`) or closed: it no longer counts as pending load. */
  | { t: 'settled'; conn: number }
  | { t: 'request'; id: number; query: AgentQuery | MetricsQuery }
  /** Answer to `metrics-ask`: this worker's metrics (its registry as JSON). */
  | { t: 'metrics'; id: number; metrics: MetricJson[] }
  /** The direct port is closed (answer to `release-port`). */
  | { t: 'released' }
  /** The worker is stopping on its own (a signal sent to it directly). */
  | { t: 'stopping'; reason: string };

/** Agent → worker, inside a `batch`. */
export type AgentItem =
  /** From the agent (another node's message, a dead worker's `left`): a v8-serialized `BusMessage` for the local members. */
  | { t: 'deliver'; payload: Uint8Array; offset?: number; epoch?: string }
  /** Members of `channel` on other nodes (`--bus`), as the agent knows them now; the other workers' come over the peer links. */
  | { t: 'remote'; channel: string; count: number }
  | { t: 'response'; id: number; answer: AgentAnswer }
  /** Send this worker's metrics (`metrics`) for a scrape of the agent. */
  | { t: 'metrics-ask'; id: number }
  /** Answer to `sync`: messages for the channel published anywhere from now on reach the worker. */
  | { t: 'synced'; id: number }
  /** Whether the agent's bus to other nodes (`--bus`) is ready; `/readyz` follows it. */
  | { t: 'bus-ready'; ready: boolean }
  /** Worker `key` exited: a link to it that has not come is not waited for. */
  | { t: 'peer-gone'; key: number }
  /** Close the direct port (a replacement is about to take it); keep everything else. */
  | { t: 'release-port' }
  /** The agent's bound port (known only after the first workers started): a worker without a direct port records it in its row. */
  | { t: 'agent-port'; port: number }
  /** Stop: close every session with 1001, write the rows, exit 0. */
  | { t: 'drain' }
  /** Close this worker's session `session` with 4002 (an operator asked, admin-api.ts). */
  | { t: 'close-session'; session: string };

/** The first message a worker receives: everything it needs to start. */
export interface WorkerInit {
  t: 'init';
  config: Config;
  /** 0-based slot; the direct port is `workerPorts + slot`. */
  slot: number;
  /** The agent's server id (`servers.parent_id`). */
  parentId: string;
  /** Interval of the stats/heartbeat message, ms. */
  statsIntervalMs: number;
  /** The workers alive now: a link to each follows (`peer`), and their tables are read before taking connections. */
  peers: number[];
  /** The port the agent is bound to; null while it is not bound yet (an `agent-port` item follows then). */
  agentPort: number | null;
}

/** A batch of items, in order. */
export interface IpcBatch<T> {
  t: 'batch';
  items: T[];
}

/** A connection handed to a worker; the socket travels as the message's handle. */
export interface ConnMessage {
  t: 'conn';
  conn: number;
}

/** This worker's end of a direct link to worker `key`; the socket travels as the message's handle. */
export interface PeerMessage {
  t: 'peer';
  key: number;
}

/** `--accept shared`: listen on the agent's port too; its bound socket travels as the message's handle (shared-port.ts). */
export interface ListenMessage {
  t: 'listen';
}

/** `--accept shared`: a connection the worker will not serve (it is at its share), for the agent to place; its raw handle travels with it. */
export interface ForwardMessage {
  t: 'forward';
}

/** Everything the agent sends on the IPC channel. */
export type AgentMessage = WorkerInit | IpcBatch<AgentItem> | ConnMessage | PeerMessage | ListenMessage;
/** Everything a worker sends on the IPC channel. */
export type WorkerMessage = IpcBatch<WorkerItem> | ForwardMessage;
