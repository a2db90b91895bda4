import { hostname } from 'node:os';
import type { Config } from '../config/options.js';
import { createStore } from '../store/open-store.js';
import type { ServerRow } from '../store/store.js';

/** What an agent's `/agent/workers` says of its traffic (when it answers). */
interface Traffic {
  messagesInPerSec: number;
  messagesOutPerSec: number;
}

/** A live node and its workers, as `zenconn status --cluster` prints them. */
export interface ClusterNode {
  server: ServerRow;
  sessions: number;
  traffic: Traffic | null;
  workers: Array<{ server: ServerRow; sessions: number }>;
}

/**
 * Every live node of a shared database: servers with no `stopped_at` seen within
 * `--stale-server-ms`, agents with their workers, open sessions from the `sessions`
 * table, and each agent's messages/s from its `/agent/workers` when it answers (1.5 s;
 * it needs `token`, one with the `admin` grant).
 */
export async function clusterNodes(config: Readonly<Config>, token: string | null = null): Promise<ClusterNode[]> {
  const store = createStore(config.database);
  await store.open();
  try {
    const now = Date.now();
    const live = (await store.listServers()).filter((s) => s.stoppedAt === null && now - s.lastSeenAt.getTime() <= config.staleServerMs);
    const open = await store.openSessionsByServer();
    const nodes: ClusterNode[] = [];
    for (const s of live.filter((x) => x.parentId === null)) {
      const workers = live.filter((w) => w.parentId === s.id).map((w) => ({ server: w, sessions: open.get(w.id) ?? 0 }));
      const sessions = (open.get(s.id) ?? 0) + workers.reduce((n, w) => n + w.sessions, 0);
      nodes.push({ server: s, sessions, traffic: s.role === 'agent' && token !== null ? await traffic(s, token) : null, workers });
    }
    return nodes;
  } finally {
    await store.close();
  }
}

async function traffic(s: ServerRow, token: string): Promise<Traffic | null> {
  try {
    const url = new URL(s.address);
    if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = s.hostname === hostname() ? '127.0.0.1' : s.hostname;
    if (url.protocol === 'https:') return null; // a self-signed agent: its own `zenconn status` shows it
    const res = await fetch(new URL('/agent/workers', url), { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(1500) });
    if (!res.ok) return null;
    const body = (await res.json()) as { totals?: Traffic };
    return body.totals ? { messagesInPerSec: body.totals.messagesInPerSec, messagesOutPerSec: body.totals.messagesOutPerSec } : null;
  } catch {
    return null;
  }
}

/** The table of `zenconn status --cluster`. */
export function formatCluster(nodes: ClusterNode[]): string {
  const rows: string[][] = [['NODE', 'ROLE', 'HOST', 'PID', 'ADDRESS', 'UP', 'SESSIONS', 'IN/S', 'OUT/S']];
  const up = (s: ServerRow): string => `${Math.floor((Date.now() - s.startedAt.getTime()) / 1000)}s`;
  let total = 0;
  for (const n of nodes) {
    total += n.sessions;
    const t = n.traffic;
    rows.push([n.server.id, n.server.role, n.server.hostname, String(n.server.pid), n.server.address, up(n.server), String(n.sessions), t ? String(t.messagesInPerSec) : '-', t ? String(t.messagesOutPerSec) : '-']);
    for (const w of n.workers) rows.push([`  ${w.server.id}`, 'worker', w.server.hostname, String(w.server.pid), '', up(w.server), String(w.sessions), '', '']);
  }
  rows.push([`${nodes.length} node(s)`, '', '', '', '', '', String(total), '', '']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
