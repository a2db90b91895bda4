/**
 * A client process of the load generator: opens its share of the subscribers, counts
 * every event per sequence number and per subscriber, times the measured ones, and
 * reports to the parent over IPC (see ipc.ts). Several of these run at once so that
 * the client side uses more than one core and each stays under the open-file limit.
 */
import { connectSubscriber, type Delivery, type Subscriber } from './client-protocols.js';
import { Histogram } from './histogram.js';
import type { FromWorker, ToWorker } from './ipc.js';
import { sharedNow } from './payload.js';

/** Counters indexed by sequence number, growing by doubling. */
class SeqCounters {
  private data = new Uint32Array(1024);
  get(seq: number): number {
    return seq < this.data.length ? this.data[seq]! : 0;
  }
  add(seq: number, n = 1): void {
    if (seq >= this.data.length) {
      let size = this.data.length * 2;
      while (size <= seq) size *= 2;
      const grown = new Uint32Array(size);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[seq]! += n;
  }
}

const subscribers: Subscriber[] = [];
/** Per subscriber: last seq received (-1 none), and whether its connection closed. */
let lastSeq = new Int32Array(0);
let dead = new Uint8Array(0);
/** Subscribers that closed, with their last seq: they no longer hold the watermark back. */
const deadLast: number[] = [];
/** First-time receipts per seq (loss accounting). */
const received = new SeqCounters();
/** Subscribers whose last seq is >= seq (watermark; a gap counts as passed). */
const reached = new SeqCounters();
const latency = new Histogram();
let connectedCount = 0;
let watermark = -1;
let reportedWatermark = -1;
let progressScheduled = false;
let duplicates = 0;
let unexpected = 0;
let firstUnexpected: string | undefined;
let firstClose: string | undefined;
let closing = false;

function send(message: FromWorker): void {
  process.send?.(message);
}

function onEvent(index: number, delivery: Delivery): void {
  const seq = delivery.s;
  const last = lastSeq[index]!;
  if (seq <= last) {
    duplicates++;
    return;
  }
  received.add(seq);
  for (let k = last + 1; k <= seq; k++) reached.add(k);
  lastSeq[index] = seq;
  if (delivery.m === 1) latency.record((sharedNow() - delivery.t) * 1000);
  if (!progressScheduled) {
    progressScheduled = true;
    setImmediate(reportProgress);
  }
}

function deadBelow(seq: number): number {
  let n = 0;
  for (const last of deadLast) if (last < seq) n++;
  return n;
}

function reportProgress(): void {
  progressScheduled = false;
  while (connectedCount > 0 && reached.get(watermark + 1) + deadBelow(watermark + 1) >= connectedCount) watermark++;
  if (watermark !== reportedWatermark) {
    reportedWatermark = watermark;
    send({ ev: 'progress', wm: watermark });
  }
}

async function connectAll(message: Extract<ToWorker, { cmd: 'connect' }>): Promise<void> {
  const started = performance.now();
  lastSeq = new Int32Array(message.count).fill(-1);
  dead = new Uint8Array(message.count);
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const openOne = async (index: number): Promise<void> => {
    const target = message.targets[(message.firstIndex + index) % message.targets.length]!;
    try {
      const subscriber = await connectSubscriber({
        target,
        protocol: message.protocol,
        channel: message.channel,
        headers: message.headers,
        onEvent: (delivery) => onEvent(index, delivery),
        onClose: (code, reason) => {
          if (closing || dead[index] === 1) return;
          dead[index] = 1;
          deadLast.push(lastSeq[index]!);
          firstClose ??= `subscriber closed by the server: ${code} ${reason}`.trim();
          if (!progressScheduled) {
            progressScheduled = true;
            setImmediate(reportProgress);
          }
        },
        onUnexpected: (frame) => {
          unexpected++;
          firstUnexpected ??= frame;
        }
      });
      subscribers.push(subscriber);
    } catch (err) {
      failed++;
      firstError ??= (err as Error).message;
    }
  };
  const lane = async (): Promise<void> => {
    while (next < message.count) await openOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(message.concurrency, message.count) }, lane));
  connectedCount = subscribers.length;
  send({
    ev: 'connected',
    ok: subscribers.length,
    failed,
    ms: performance.now() - started,
    ...(firstError === undefined ? {} : { firstError })
  });
}

function report(firstSeq: number, endSeq: number): void {
  let total = 0;
  let incompleteSeqs = 0;
  for (let seq = firstSeq; seq < endSeq; seq++) {
    const n = received.get(seq);
    total += n;
    if (n < connectedCount) incompleteSeqs++;
  }
  send({
    ev: 'report',
    received: total,
    incompleteSeqs,
    duplicates,
    closed: deadLast.length,
    unexpected,
    latency: latency.toSparse(),
    ...(firstClose === undefined ? {} : { firstClose }),
    ...(firstUnexpected === undefined ? {} : { firstUnexpected })
  });
}

process.on('message', (message: ToWorker) => {
  switch (message.cmd) {
    case 'connect':
      void connectAll(message);
      break;
    case 'report':
      report(message.firstSeq, message.endSeq);
      break;
    case 'close':
      closing = true;
      for (const subscriber of subscribers) subscriber.close();
      // Give the close frames a moment to leave, then go; the parent does not wait on us.
      setTimeout(() => process.exit(0), 300).unref();
      process.disconnect?.();
      break;
  }
});

// The parent died: nothing more to do.
process.on('disconnect', () => {
  if (!closing) process.exit(0);
});
