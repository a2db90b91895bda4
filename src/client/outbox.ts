/**
 * The client's outgoing frames: a queue sent in order while connected, and the requests
 * sent and not yet answered, matched to their answers per channel in the order they were
 * sent (the server answers a session's frames in order; see docs/client.md for the one
 * ambiguous case).
 */
import { ZenError } from './errors.js';
import type { Subscription } from './subscription.js';
import type { OutFrame } from './wire.js';

/** The requests that get an answer of their own. */
export type RequestKind = 'broadcast' | 'history' | 'presence';

/** A request waiting for its answer. */
export interface PendingRequest {
  kind: RequestKind;
  channel: string;
  resolve(value: never): void;
  reject(err: ZenError): void;
}

/** A frame waiting to be sent. */
export interface QueueItem {
  /** The frame, or its promise while it is being built (a private channel's signature). */
  frame: OutFrame | PromiseLike<OutFrame>;
  request?: PendingRequest;
  /** A subscribe or unsubscribe: rebuilt from the subscriptions after a reconnect, never kept. */
  membership?: boolean;
  /** For a subscribe: its subscription (told when its frame could not be built). */
  sub?: Subscription;
}

/** What the outbox needs of its client. */
export interface OutboxPort {
  /** Whether frames can be sent now (connected). */
  canSend(): boolean;
  /** Sends one frame on the open socket. */
  send(frame: OutFrame): void;
}

export class Outbox {
  private queue: QueueItem[] = [];
  private inflight: PendingRequest[] = [];
  private pumping = false;

  constructor(
    private readonly port: OutboxPort,
    /** Frames that may wait while frames cannot be sent (`maxQueued`). */
    private readonly maxQueued: number
  ) {}

  /** Queues a frame and sends what can be sent. */
  push(item: QueueItem): void {
    this.queue.push(item);
    void this.pump();
  }

  /** Queues a request; its promise settles with the answer. Rejects at once with `queue full` past the bound while offline. */
  request<T>(kind: RequestKind, channel: string, frame: OutFrame): Promise<T> {
    if (!this.port.canSend() && this.queue.length >= this.maxQueued) {
      return Promise.reject(new ZenError('queue full', 'too many requests waiting for a connection'));
    }
    return new Promise<T>((resolve, reject) => this.push({ frame, request: { kind, channel, resolve: resolve as (v: never) => void, reject } }));
  }

  /** A new session: the memberships still queued are replaced by `memberships`, to be sent first; then the rest, in order. Call `pump` next. */
  restart(memberships: QueueItem[]): void {
    this.queue = [...memberships, ...this.queue.filter((i) => !i.membership)];
  }

  /** Takes the oldest request in flight that matches. */
  take(match: (r: PendingRequest) => boolean): PendingRequest | undefined {
    const i = this.inflight.findIndex(match);
    return i === -1 ? undefined : this.inflight.splice(i, 1)[0];
  }

  /** Takes the newest request in flight. */
  takeNewest(): PendingRequest | undefined {
    return this.inflight.pop();
  }

  /** Rejects the requests sent and unanswered; with `queued`, those not sent too (and empties the queue). */
  fail(err: ZenError, queued: boolean): void {
    const requests = this.inflight;
    this.inflight = [];
    if (queued) {
      for (const i of this.queue) if (i.request) requests.push(i.request);
      this.queue = [];
    }
    for (const r of requests) r.reject(err);
  }

  /** Sends queued frames in order while it can; waits on a frame still being built. */
  async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.port.canSend() && this.queue.length > 0) {
        const item = this.queue[0]!;
        if (isPromiseLike(item.frame)) {
          try {
            item.frame = await item.frame;
          } catch (err) {
            if (this.queue[0] === item) this.queue.shift();
            item.sub?.deliver('error', { errors: [`signChannel failed: ${(err as Error).message}`] });
          }
          continue; // the connection may have changed meanwhile: look again
        }
        this.queue.shift();
        if (item.request) this.inflight.push(item.request);
        this.port.send(item.frame);
      }
    } finally {
      this.pumping = false;
    }
  }
}

function isPromiseLike<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof (v as { then?: unknown }).then === 'function';
}
