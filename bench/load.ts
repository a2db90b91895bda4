/**
 * The load generator: N subscribers on one channel, spread over client processes
 * (sub-worker.ts), and one publisher in this process that keeps a window of
 * broadcasts in flight for a warm-up and then a measured window.
 *
 * Flow control has two bounds, both needed for meaningful numbers:
 * - `window`: broadcasts sent and not yet acknowledged (`received` / Socket.IO ack);
 *   this bounds what the server has accepted and not yet fanned out.
 * - `maxLag`: how far the publisher may run ahead of the slowest subscriber
 *   (watermarks reported by the client processes); this bounds what sits in socket
 *   buffers between the server and its subscribers, so latency measures the system
 *   and not a queue that grows for the whole run when the clients are the slower side.
 *
 * Every message sent in the measured window carries `m: 1`; every subscriber must
 * receive every one of them, so `expected = measured messages × subscribers` and
 * `lost = expected − received` (first receipts only; duplicates are counted apart).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connectPublisher, type Protocol, type Publisher, type Target } from './client-protocols.js';
import { Histogram } from './histogram.js';
import type { FromWorker, ToWorker } from './ipc.js';
import { makePayload, PAYLOAD_BYTES } from './payload.js';

/** One load run: where, which protocol, how many subscribers, how long. */
export interface LoadOptions {
  /** Servers; subscribers are spread round-robin over them, the publisher uses the first. */
  targets: Target[];
  protocol: Protocol;
  /** Channel every subscriber joins (default `bench`). */
  channel?: string;
  subscribers: number;
  /** Client processes the subscribers are spread over (default 2; more when over 15,000 each). */
  clientProcesses?: number;
  /** Handshakes in flight per client process (default 64). */
  connectConcurrency?: number;
  /** Broadcasts awaiting their ack at once (default 16). */
  window?: number;
  /** Most messages the publisher may be ahead of the slowest subscriber (default 32). */
  maxLag?: number;
  /**
   * Offered load, messages per second (default 0: as fast as `window` and `maxLag` allow).
   * At a fixed rate below saturation, rows compare by CPU per delivery for the same work.
   */
  rate?: number;
  warmupMs: number;
  measureMs: number;
  /** After the last send, how long to wait for every subscriber to catch up (default 10 s). */
  drainTimeoutMs?: number;
  /** Pause between the last subscriber connecting and the idle sample (default 1 s). */
  settleMs?: number;
  /** Bearer token of the publisher (zenconn: a token with the `publish` grant). */
  publisherToken?: string;
  /** Upgrade headers of every subscriber. */
  subscriberHeaders?: Record<string, string>;
  /** Hooks where the caller samples the server: see `LoadHooks`. */
  hooks?: LoadHooks;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** Points in a run where the caller samples the server's CPU and memory. */
export interface LoadHooks {
  /** The publisher is connected; no subscriber yet. */
  beforeSubscribers?(): void | Promise<void>;
  /** Every subscriber is connected, subscribed and idle. */
  subscribersIdle?(): void | Promise<void>;
  /** The measured window starts (the next message sent carries m = 1). */
  measureStart?(): void;
  /** The measured window and the drain after it are over. */
  measureEnd?(): void;
}

/** What a load run measured on the client side (the server side is the caller's, via hooks). */
export interface LoadResult {
  protocol: Protocol;
  subscribers: number;
  clientProcesses: number;
  window: number;
  maxLag: number;
  /** Offered messages per second (0: unlimited). */
  rate: number;
  payloadBytes: number;
  /** Time to open and subscribe all subscribers, ms. */
  connectMs: number;
  /** Length of the measured window, ms. */
  measuredMs: number;
  /** Drain after it, ms. */
  drainMs: number;
  /** Messages published in the measured window. */
  messages: number;
  /** Messages published in all (warm-up included). */
  messagesTotal: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  /** Measured messages that at least one subscriber missed (summed over client processes). */
  incompleteMessages: number;
  deliveriesPerSec: number;
  messagesPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Subscribers whose connection the server closed during the run. */
  closedByServer: number;
  /** The recipient count in the last ack, and acks whose count was not N. */
  lastAckCount: number;
  ackCountMismatches: number;
  /** Things that went wrong without stopping the run. */
  notes: string[];
}

interface Worker {
  child: ChildProcess;
  count: number;
  /** Global index of its first subscriber. */
  firstIndex: number;
  wm: number;
  waiting?: { ev: FromWorker['ev']; resolve: (message: FromWorker) => void; reject: (err: Error) => void };
}

/** Subscribers one client process opens at most (the machine allows 20,000 open files per process). */
export const MAX_SUBSCRIBERS_PER_PROCESS = 15_000;

const WORKER_PATH = fileURLToPath(new URL('./sub-worker.js', import.meta.url));

/** Run one load against already-started servers. Throws when it cannot run at all. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const channel = options.channel ?? 'bench';
  // A process may hold 20,000 open files here: past MAX_SUBSCRIBERS_PER_PROCESS each, add processes.
  const clientProcesses = Math.max(
    1,
    Math.min(Math.max(options.clientProcesses ?? 2, Math.ceil(options.subscribers / MAX_SUBSCRIBERS_PER_PROCESS)), options.subscribers)
  );
  const window = options.window ?? 16;
  const maxLag = options.maxLag ?? 32;
  const rate = options.rate ?? 0;
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const log = options.log ?? (() => {});
  const hooks = options.hooks ?? {};
  const notes: string[] = [];
  const workers: Worker[] = [];
  let publisher: Publisher | undefined;
  let publisherFailure: string | undefined;
  let wake: () => void = () => {};

  const minWatermark = (): number => workers.reduce((min, w) => Math.min(min, w.wm), Number.POSITIVE_INFINITY);

  const request = <E extends FromWorker['ev']>(worker: Worker, message: ToWorker, ev: E, timeoutMs: number) =>
    new Promise<Extract<FromWorker, { ev: E }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client process gave no ${ev} in ${timeoutMs} ms`)), timeoutMs);
      worker.waiting = {
        ev,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<FromWorker, { ev: E }>);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        }
      };
      worker.child.send(message);
    });

  try {
    // Publisher first: it warms the server's handshake path before the RSS baseline.
    publisher = await connectPublisher({
      target: options.targets[0]!,
      protocol: options.protocol,
      channel,
      ...(options.publisherToken === undefined ? {} : { token: options.publisherToken }),
      onFailure: (message) => {
        publisherFailure ??= message;
        wake();
      }
    });
    await hooks.beforeSubscribers?.();

    const perWorker = Math.floor(options.subscribers / clientProcesses);
    let firstIndex = 0;
    for (let i = 0; i < clientProcesses; i++) {
      const count = perWorker + (i < options.subscribers % clientProcesses ? 1 : 0);
      const child = fork(WORKER_PATH, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const worker: Worker = { child, count, firstIndex, wm: -1 };
      child.on('message', (message: FromWorker) => {
        if (message.ev === 'progress') {
          worker.wm = message.wm;
          wake();
        } else if (worker.waiting?.ev === message.ev) {
          const waiting = worker.waiting;
          worker.waiting = undefined;
          waiting.resolve(message);
        }
      });
      child.on('exit', (code, signal) => {
        const waiting = worker.waiting;
        worker.waiting = undefined;
        waiting?.reject(new Error(`client process exited (${signal ?? code})`));
      });
      workers.push(worker);
      firstIndex += count;
    }

    const connectStarted = performance.now();
    const connected = await Promise.all(
      workers.map((worker) =>
        request(
          worker,
          {
            cmd: 'connect',
            targets: options.targets,
            protocol: options.protocol,
            channel,
            count: worker.count,
            firstIndex: worker.firstIndex,
            concurrency: options.connectConcurrency ?? 64,
            headers: options.subscriberHeaders ?? {}
          },
          'connected',
          120_000
        )
      )
    );
    const connectMs = performance.now() - connectStarted;
    const failed = connected.reduce((n, c) => n + c.failed, 0);
    if (failed > 0) {
      const first = connected.find((c) => c.firstError !== undefined)?.firstError;
      throw new Error(`${failed} of ${options.subscribers} subscribers failed: ${first}`);
    }
    log(`  ${options.subscribers} subscribers ready in ${(connectMs / 1000).toFixed(1)} s`);
    await sleep(options.settleMs ?? 1000);
    await hooks.subscribersIdle?.();

    // Publish: warm-up, then the measured window.
    let seq = 0;
    let inFlight = 0;
    let measuring = false;
    let running = true;
    let lastAckCount = -1;
    let ackCountMismatches = 0;
    const pub = publisher;
    const onAck = (count: number): void => {
      inFlight--;
      lastAckCount = count;
      if (count !== options.subscribers) ackCountMismatches++;
      pump();
    };
    // With a rate: message k may go at rateStart + k / rate; a timer wakes the pump for the next.
    const rateStart = performance.now();
    let rateTimer: NodeJS.Timeout | undefined;
    const due = (): number => (rate > 0 ? Math.floor(((performance.now() - rateStart) * rate) / 1000) + 1 : Number.POSITIVE_INFINITY);
    const pump = (): void => {
      while (running && publisherFailure === undefined && inFlight < window && seq - 1 - minWatermark() < maxLag && seq < due()) {
        inFlight++;
        pub.publish(makePayload(seq++, measuring), onAck);
      }
      if (rate > 0 && running && rateTimer === undefined && seq >= due()) {
        const at = rateStart + (seq * 1000) / rate;
        rateTimer = setTimeout(() => {
          rateTimer = undefined;
          pump();
        }, Math.max(0, at - performance.now()));
      }
    };
    let wakeScheduled = false;
    wake = () => {
      if (wakeScheduled) return;
      wakeScheduled = true;
      setImmediate(() => {
        wakeScheduled = false;
        pump();
      });
    };

    pump();
    await sleep(options.warmupMs);
    if (publisherFailure !== undefined) throw new Error(publisherFailure);
    hooks.measureStart?.();
    measuring = true;
    const firstSeq = seq;
    const measureStarted = performance.now();
    await sleep(options.measureMs);
    running = false;
    clearTimeout(rateTimer);
    const endSeq = seq;
    const measuredMs = performance.now() - measureStarted;

    // Drain: every ack in, every subscriber at the last seq (or the timeout).
    const drainStarted = performance.now();
    while (performance.now() - drainStarted < drainTimeoutMs) {
      if (inFlight === 0 && minWatermark() >= endSeq - 1) break;
      if (publisherFailure !== undefined) break;
      await sleep(5);
    }
    const drainMs = performance.now() - drainStarted;
    hooks.measureEnd?.();
    if (publisherFailure !== undefined) notes.push(publisherFailure);
    if (inFlight > 0) notes.push(`${inFlight} broadcasts never acknowledged`);
    if (drainMs >= drainTimeoutMs) notes.push(`subscribers had not caught up ${drainTimeoutMs} ms after the last send`);

    const reports = await Promise.all(
      workers.map((worker) => request(worker, { cmd: 'report', firstSeq, endSeq }, 'report', 30_000))
    );
    const latency = new Histogram();
    let delivered = 0;
    let duplicates = 0;
    let incompleteMessages = 0;
    let closedByServer = 0;
    let unexpected = 0;
    for (const r of reports) {
      latency.merge(r.latency);
      delivered += r.received;
      duplicates += r.duplicates;
      incompleteMessages += r.incompleteSeqs;
      closedByServer += r.closed;
      unexpected += r.unexpected;
      if (r.firstClose !== undefined && !notes.includes(r.firstClose)) notes.push(r.firstClose);
      if (r.firstUnexpected !== undefined) notes.push(`unexpected frame: ${r.firstUnexpected}`);
    }
    if (unexpected > 0) notes.push(`${unexpected} unexpected frames`);
    if (ackCountMismatches > 0) notes.push(`${ackCountMismatches} acks with a count other than ${options.subscribers} (last ${lastAckCount})`);
    const messages = endSeq - firstSeq;
    const expected = messages * options.subscribers;
    return {
      protocol: options.protocol,
      subscribers: options.subscribers,
      clientProcesses,
      window,
      maxLag,
      rate,
      payloadBytes: PAYLOAD_BYTES,
      connectMs,
      measuredMs,
      drainMs,
      messages,
      messagesTotal: seq,
      expected,
      delivered,
      lost: expected - delivered,
      duplicates,
      incompleteMessages,
      deliveriesPerSec: delivered / (measuredMs / 1000),
      messagesPerSec: messages / (measuredMs / 1000),
      latencyMs: {
        p50: latency.quantile(0.5) / 1000,
        p90: latency.quantile(0.9) / 1000,
        p99: latency.quantile(0.99) / 1000,
        max: latency.quantile(1) / 1000
      },
      closedByServer,
      lastAckCount,
      ackCountMismatches,
      notes
    };
  } finally {
    publisher?.close();
    for (const worker of workers) {
      if (worker.child.connected) worker.child.send({ cmd: 'close' } satisfies ToWorker);
    }
    await Promise.all(workers.map((worker) => waitExit(worker.child, 3000)));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait for a child to exit; kill it (by its pid) if it has not after `ms`. */
function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
