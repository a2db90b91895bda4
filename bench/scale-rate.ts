/**
 * Sustained broadcasts to everyone (#15 §4): `rate` broadcasts per second to every
 * session for `seconds`, sent on schedule whatever the deliveries do (an open loop: a
 * server that falls behind shows it as a backlog, not as a slower sender).
 *
 * Every client process counts the deliveries of each sequence number in the window and
 * the time its last one arrived (scale-client.ts `window`). Per broadcast, its spread is
 * the time from its send to its last recipient anywhere. The server keeps up when every
 * delivery arrived and the spread does not grow over the window: the median of the last
 * third of the broadcasts is at most 1.5× the median of the first third plus one interval.
 * A backlog grows the spread by the shortfall every interval, so it fails that within a
 * few seconds; a server that keeps up holds it flat.
 */
import { cpuMicros } from './proc-stats.js';
import { makePayload, sharedNow, type Payload } from './payload.js';
import { next, send, sleep, type Client } from './scale-fleet.js';

/** What one rate measured. */
export interface RateFigures {
  /** Broadcasts per second offered. */
  rate: number;
  seconds: number;
  broadcasts: number;
  /** Deliveries expected (broadcasts × sessions) and those that arrived. */
  expected: number;
  delivered: number;
  /** Deliveries per second: what arrived, over the time from the first send to the last arrival. */
  deliveriesPerSec: number;
  /** Send → last recipient, ms: median and largest over the window, median of its first and last thirds. */
  spreadP50Ms: number;
  spreadMaxMs: number;
  firstThirdP50Ms: number;
  lastThirdP50Ms: number;
  /** From the last send to the last delivery, ms. */
  drainMs: number;
  /** CPU over the window (first send → last delivery), % of a core: the server's tree, the client processes. */
  serverCpuPercent: number;
  clientCpuPercent: number;
  /** Sessions the server closed during the window (its send-buffer cap, say). */
  droppedByServer: number;
  keptUp: boolean;
  notes: string[];
}

export interface RateRun {
  clients: Client[];
  sessions: number;
  serverPid: number;
  rate: number;
  seconds: number;
  /** First sequence number of the window (above every one sent before it). */
  firstSeq: number;
  /** Sends one broadcast; resolves with an error text or undefined. */
  publish(payload: Payload): Promise<string | undefined>;
  /** How long to wait after the last send for the rest (default 60 s). */
  drainTimeoutMs?: number;
}

/** Runs one rate; see the module's comment. */
export async function sustainedBroadcasts(run: RateRun): Promise<RateFigures> {
  const n = Math.max(1, Math.round(run.rate * run.seconds));
  const intervalMs = 1000 / run.rate;
  const notes: string[] = [];
  await Promise.all(run.clients.map((c) => { const armed = next(c, 'armed', 30_000); send(c, { cmd: 'window', from: run.firstSeq, n }); return armed; }));
  const counted = run.clients.map((c) => next(c, 'counted', 600_000));
  const clientPids = run.clients.map((c) => c.child.pid ?? 0);
  const serverCpuBefore = cpuMicros([run.serverPid]);
  const clientCpuBefore = cpuMicros(clientPids);

  const sentAt = new Float64Array(n);
  const publishing: Array<Promise<string | undefined>> = [];
  const started = sharedNow();
  for (let i = 0; i < n; i++) {
    const wait = started + i * intervalMs - sharedNow();
    if (wait > 0) await sleep(wait);
    const payload = makePayload(run.firstSeq + i, true);
    sentAt[i] = payload.t;
    publishing.push(run.publish(payload));
  }
  const lastSent = sharedNow();
  const errors = (await Promise.all(publishing)).filter((e): e is string => e !== undefined);
  if (errors.length > 0) notes.push(`${errors.length} broadcasts failed: ${errors[0]}`);

  // Every client reports once all its deliveries arrived; the ones still short by the drain timeout are asked.
  const drainTimeoutMs = run.drainTimeoutMs ?? 60_000;
  const timer = setTimeout(() => {
    for (const c of run.clients) send(c, { cmd: 'report' });
  }, drainTimeoutMs);
  const reports = await Promise.all(counted);
  clearTimeout(timer);
  const serverCpu = cpuMicros([run.serverPid]) - serverCpuBefore;
  const clientCpu = cpuMicros(clientPids) - clientCpuBefore;
  if (reports.some((r) => !r.complete)) notes.push(`not every delivery arrived within ${drainTimeoutMs} ms of the last send`);

  const summary = summarize({ rate: run.rate, seconds: run.seconds, sessions: run.sessions, sentAt, started, lastSent, reports, errors: errors.length });
  const { lastArrival, ...figures } = summary;
  const windowMs = Math.max(1, lastArrival - started);
  return {
    ...figures,
    serverCpuPercent: (serverCpu / (windowMs * 1000)) * 100,
    clientCpuPercent: (clientCpu / (windowMs * 1000)) * 100,
    notes
  };
}

/** What the client processes counted, as `summarize` reads it. */
export interface WindowReport {
  counts: number[];
  lastAt: number[];
  droppedByServer: number;
}

/** The figures of one window from its send times and the client processes' counts (everything but CPU and notes). */
export function summarize(w: {
  rate: number;
  seconds: number;
  sessions: number;
  sentAt: ArrayLike<number>;
  started: number;
  lastSent: number;
  reports: WindowReport[];
  errors: number;
}): Omit<RateFigures, 'serverCpuPercent' | 'clientCpuPercent' | 'notes'> & { lastArrival: number } {
  const n = w.sentAt.length;
  const spreads: number[] = [];
  let delivered = 0;
  let lastArrival = 0;
  for (let i = 0; i < n; i++) {
    let last = 0;
    for (const r of w.reports) {
      delivered += r.counts[i] ?? 0;
      last = Math.max(last, r.lastAt[i] ?? 0);
    }
    lastArrival = Math.max(lastArrival, last);
    spreads.push(last - w.sentAt[i]!);
  }
  const windowMs = Math.max(1, lastArrival - w.started);
  const third = Math.max(1, Math.floor(n / 3));
  const firstThirdP50Ms = median(spreads.slice(0, third));
  const lastThirdP50Ms = median(spreads.slice(n - third));
  const expected = n * w.sessions;
  return {
    rate: w.rate,
    seconds: w.seconds,
    broadcasts: n,
    expected,
    delivered,
    deliveriesPerSec: delivered / (windowMs / 1000),
    spreadP50Ms: median(spreads),
    spreadMaxMs: Math.max(...spreads),
    firstThirdP50Ms,
    lastThirdP50Ms,
    drainMs: lastArrival - w.lastSent,
    droppedByServer: w.reports.reduce((sum, r) => sum + r.droppedByServer, 0),
    keptUp: delivered === expected && w.errors === 0 && lastThirdP50Ms <= 1.5 * firstThirdP50Ms + 1000 / w.rate,
    lastArrival
  };
}

/** `10/s for 10 s: kept up | 1,000,000 of 1,000,000 delivered, 95,000/s | spread …`. */
export function rateLine(r: RateFigures): string {
  return (
    `${r.rate}/s for ${r.seconds} s: ${r.keptUp ? 'kept up' : 'fell behind'} | ${r.delivered} of ${r.expected} delivered, ${r.deliveriesPerSec.toFixed(0)}/s | ` +
    `spread median ${r.spreadP50Ms.toFixed(0)} ms (first third ${r.firstThirdP50Ms.toFixed(0)}, last third ${r.lastThirdP50Ms.toFixed(0)}), max ${r.spreadMaxMs.toFixed(0)} ms | ` +
    `drain ${r.drainMs.toFixed(0)} ms after the last send | CPU: server ${r.serverCpuPercent.toFixed(0)} %, clients ${r.clientCpuPercent.toFixed(0)} % of a core` +
    (r.droppedByServer > 0 ? ` | ${r.droppedByServer} sessions dropped by the server` : '') +
    (r.notes.length > 0 ? ` | ${r.notes.join('; ')}` : '')
  );
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
