/**
 * A client process of the scale bench (scale.ts): opens its share of idle subscribed
 * sessions to one target (its own loopback address, so each process has a fresh range
 * of ephemeral ports), tells the parent when the next broadcast reached all of them,
 * and closes them all on request, reporting once every close completed.
 *
 * Parent → child: `connect`, `arm` (count the next event per subscriber), `window`
 * (count events `from` … `from + n - 1` per sequence number: the sustained-rate mode,
 * scale-rate.ts), `report` (send that window's counts now), `close`.
 * Child → parent: `connected`, `armed`, `delivered` (when every subscriber got the
 * armed broadcast: the time the last one arrived, on the shared clock), `counted` (the
 * window's deliveries and last arrival per sequence number: once all of them arrived,
 * or on `report`), `closed`.
 */
import { connectSubscriber, type Subscriber, type Target } from './client-protocols.js';
import { sharedNow } from './payload.js';

/** Parent → scale client. */
export type ToScaleClient =
  | { cmd: 'connect'; target: Target; channel: string; /** false: sessions that do not subscribe (default true). */ subscribe?: boolean; count: number; concurrency: number }
  | { cmd: 'arm'; seq: number }
  | { cmd: 'window'; from: number; n: number }
  | { cmd: 'report' }
  | { cmd: 'close' };

/** Scale client → parent. */
export type FromScaleClient =
  | { ev: 'connected'; ok: number; failed: number; firstError?: string; ms: number; /** Each session's connect → subscribed (or accepted), ms, in completion order. */ latencies: number[] }
  | { ev: 'armed' }
  | { ev: 'delivered'; seq: number; count: number; lastAt: number }
  | { ev: 'counted'; complete: boolean; counts: number[]; lastAt: number[]; droppedByServer: number }
  | { ev: 'closed'; closed: number; droppedByServer: number };

const subscribers: Subscriber[] = [];
let armedSeq = -1;
let got = 0;
let lastAt = 0;
let closing = false;
let open = 0;
let droppedByServer = 0;
let closedAll: (() => void) | undefined;
/** The sustained-rate window: sequence numbers `windowFrom` … `windowFrom + counts.length - 1`. */
let windowFrom = 0;
let counts = new Uint32Array(0);
let lastAts = new Float64Array(0);
let windowLeft = 0;
let windowReported = true;

function send(message: FromScaleClient): void {
  process.send?.(message);
}

async function connectAll(message: Extract<ToScaleClient, { cmd: 'connect' }>): Promise<void> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];
  const lane = async (): Promise<void> => {
    while (next < message.count) {
      next++;
      const began = performance.now();
      try {
        let closed = false;
        const subscriber = await connectSubscriber({
          target: message.target,
          protocol: 'json',
          channel: message.channel,
          subscribe: message.subscribe !== false,
          timeoutMs: 60_000,
          onEvent: (delivery) => {
            const i = delivery.s - windowFrom;
            if (i >= 0 && i < counts.length) {
              counts[i]!++;
              lastAts[i] = sharedNow();
              if (--windowLeft === 0) report(true);
              return;
            }
            if (delivery.s !== armedSeq) return;
            got++;
            lastAt = sharedNow();
            if (got === subscribers.length) send({ ev: 'delivered', seq: armedSeq, count: got, lastAt });
          },
          onClose: () => {
            if (closed) return;
            closed = true;
            open--;
            if (!closing) droppedByServer++;
            if (closing && open === 0) closedAll?.();
          },
          onUnexpected: () => {}
        });
        subscribers.push(subscriber);
        latencies.push(Math.round((performance.now() - began) * 10) / 10);
        open++;
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(message.concurrency, message.count)) }, lane));
  send({ ev: 'connected', ok: subscribers.length, failed, ms: performance.now() - started, latencies, ...(firstError === undefined ? {} : { firstError }) });
}

function report(complete: boolean): void {
  if (windowReported) return;
  windowReported = true;
  send({ ev: 'counted', complete, counts: Array.from(counts), lastAt: Array.from(lastAts), droppedByServer });
}

process.on('message', (message: ToScaleClient) => {
  switch (message.cmd) {
    case 'connect':
      void connectAll(message);
      break;
    case 'arm':
      armedSeq = message.seq;
      got = 0;
      send({ ev: 'armed' });
      break;
    case 'window':
      windowFrom = message.from;
      counts = new Uint32Array(message.n);
      lastAts = new Float64Array(message.n);
      windowLeft = message.n * subscribers.length;
      windowReported = false;
      send({ ev: 'armed' });
      break;
    case 'report':
      report(false);
      break;
    case 'close': {
      closing = true;
      const done = (): void => send({ ev: 'closed', closed: subscribers.length, droppedByServer });
      if (open === 0) done();
      else closedAll = done;
      for (const subscriber of subscribers) subscriber.close();
      break;
    }
  }
});

process.on('disconnect', () => process.exit(0));
