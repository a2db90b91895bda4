import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { JournalFile, type JournalRead } from '../store/durable/journal-file.js';
import { claimOrphans, holdFile, ownFilePath, releaseFile } from '../store/durable/journal-claim.js';
import { RetryPolicy, type DurableLogger } from '../store/durable/retry-policy.js';
import { Waiters } from '../store/durable/waiters.js';
import { BackgroundSync } from '../store/durable/background-sync.js';
import type { WebhookTarget } from '../config/webhook-targets.js';
import { webhookEventCodec, type WebhookEvent } from './webhook-event.js';
import { postWebhook } from './webhook-post.js';
import { maskUrl } from '../log.js';

/** Options of {@link WebhookQueue}. */
export interface WebhookQueueOptions {
  /** Folder of the queue files (local to the host). */
  dir: string;
  target: WebhookTarget;
  /** Key of the signature header; null sends none. */
  secret: string | null;
  /** Most events per POST. */
  batchMax: number;
  /** Longest an event waits for others to share its POST. */
  batchMs: number;
  /** A POST without a full answer in this time failed. */
  timeoutMs: number;
  /** First retry delay; it doubles per failure up to `retryMaxMs`. */
  retryMinMs: number;
  retryMaxMs: number;
  /** Bytes of queue files past which new events are dropped (and counted). */
  maxBytes: number;
  logger?: DurableLogger | undefined;
  /** The POST itself (tests replace it); default {@link postWebhook}. */
  post?: (url: string, events: readonly WebhookEvent[], signal: AbortSignal) => Promise<void>;
}

/** A file past this size takes no more appends while it is still being sent: a new one starts. */
const ROTATE_BYTES = 4 << 20;
/** A dropped event is logged again at most this often. */
const DROP_LOG_MS = 30_000;

/** The stem of a target's queue files: the same URL finds its files again after a restart. */
export function queueStem(url: string): string {
  return 'webhook-' + createHash('sha256').update(url).digest('hex').slice(0, 16);
}

/**
 * The durable queue of one receiver, on the shared journal machinery of store/durable/:
 * `push` appends the event to this process's queue file (`write(2)`: it survives a crash
 * of the process from then on; fdatasync follows in the background), and one sender
 * loop POSTs the files' events in order, at most `batchMax` per POST and after at most
 * `batchMs` of waiting for company. A POST that fails, times out or is answered with
 * anything but 2xx is repeated, with backoff, until it succeeds: delivery is at least
 * once and in order (a failing batch holds the ones behind it). Files of a process that
 * died (same folder, same URL) are claimed at start and sent first.
 */
export class WebhookQueue {
  private current: JournalFile<WebhookEvent> | null = null;
  /** Files that take no more appends, oldest first. */
  private readonly sealed: JournalFile<WebhookEvent>[] = [];
  private readonly orphans: string[] = [];
  private orphanFile: JournalFile<WebhookEvent> | null = null;
  private orphanBytes = 0;
  private seq = 0;
  private closed = false;
  private loop: Promise<void> | null = null;
  private wakeLoop: (() => void) | null = null;
  /** When the oldest unsent event of the current file was queued (for the batching wait). */
  private pendingSince = 0;
  /** One fdatasync at a time, covering every append before it. */
  private readonly syncer = new BackgroundSync(
    () => this.current,
    (err, file) => this.o.logger?.error({ err, file: file.path }, 'cannot sync the webhook queue file')
  );
  private lastDropLog = 0;
  private readonly abort = new AbortController();
  private readonly retry: RetryPolicy;
  private readonly waiters = new Waiters();
  private readonly stem: string;
  /** Events POSTed with a 2xx answer. */
  delivered = 0;
  /** POSTs that failed. */
  failures = 0;
  /** Events not queued: the queue was past `maxBytes`, or its file could not be written. */
  dropped = 0;

  constructor(private readonly o: WebhookQueueOptions) {
    this.stem = queueStem(o.target.url);
    this.retry = new RetryPolicy({ minMs: o.retryMinMs, maxMs: o.retryMaxMs, logger: o.logger, recoveredMsg: 'webhook receiver answers again' });
  }

  /** The receiver's URL. */
  get url(): string {
    return this.o.target.url;
  }

  /** The URL as logged (a password masked). */
  private get shownUrl(): string {
    return maskUrl(this.o.target.url);
  }

  /** Bytes in the queue files (sent events of a file still being sent included). */
  get bytes(): number {
    return this.sealed.reduce((n, f) => n + f.bytes, (this.current?.bytes ?? 0) + this.orphanBytes);
  }

  /** Whether every event queued so far was delivered. */
  get empty(): boolean {
    return this.orphans.length === 0 && this.sealed.length === 0 && (this.current === null || this.current.drained);
  }

  /** Claims the files a dead process left for this URL and starts sending. */
  start(): void {
    let claimed: string[] = [];
    try {
      claimed = claimOrphans(this.o.dir, (stem) => stem === this.stem);
    } catch (err) {
      this.o.logger?.error({ err, dir: this.o.dir }, 'cannot read the webhook queue folder');
    }
    for (const path of claimed) {
      try {
        this.orphanBytes += statSync(path).size;
      } catch {
        // Counted as empty.
      }
    }
    if (claimed.length > 0) this.o.logger?.warn({ files: claimed, url: this.shownUrl }, 'sending webhook events left by a previous run');
    this.orphans.push(...claimed);
    this.loop = this.run();
  }

  /** Queues one event (never throws: a full queue or a failing disk drops it, counted and logged). */
  push(e: WebhookEvent): void {
    if (this.closed) return;
    if (this.bytes >= this.o.maxBytes) {
      this.drop(null, 'webhook queue is full (--webhook-max-queue-bytes); event dropped');
      return;
    }
    try {
      if (this.current !== null && this.current.bytes >= ROTATE_BYTES && !this.current.drained) {
        this.sealed.push(this.current);
        this.current = null;
      }
      if (this.current === null) this.current = this.openNext();
      if (this.current.drained) this.pendingSince = Date.now();
      this.current.append(webhookEventCodec.encode(e), 1);
    } catch (err) {
      this.drop(err, 'cannot write the webhook queue file; event dropped');
      return;
    }
    this.syncer.appended();
    this.wake();
  }

  /** Resolves true once everything queued is delivered, false after `timeoutMs`; retries are hurried meanwhile. */
  async flush(timeoutMs: number): Promise<boolean> {
    const done = this.retry.hurry();
    try {
      return await this.waiters.until(() => this.empty, timeoutMs);
    } finally {
      done();
    }
  }

  /** Stops sending (an in-flight POST is aborted); what is unsent stays on disk for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.retry.wake();
    this.wake();
    await this.loop;
    for (const f of [this.current, ...this.sealed, this.orphanFile]) {
      if (f === null) continue;
      f.close();
      releaseFile(f.path);
    }
    for (const path of this.orphans) releaseFile(path);
    this.current = null;
    this.sealed.length = 0;
    this.orphanFile = null;
    this.waiters.notify();
  }

  private drop(err: unknown, msg: string): void {
    this.dropped++;
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_MS) return;
    this.lastDropLog = now;
    this.o.logger?.error({ err, url: this.shownUrl, dropped: this.dropped, queueBytes: this.bytes }, msg);
  }

  private openNext(): JournalFile<WebhookEvent> {
    const file = JournalFile.open(ownFilePath(this.o.dir, this.stem, this.seq), webhookEventCodec, true);
    this.seq++;
    holdFile(file.path);
    return file;
  }

  private wake(): void {
    const w = this.wakeLoop;
    this.wakeLoop = null;
    w?.();
  }

  /** Waits for a `push` or `close`, or `ms` when given. */
  private idle(ms?: number): Promise<void> {
    return new Promise<void>((done) => {
      const timer = ms === undefined ? null : setTimeout(() => finish(), ms);
      const finish = (): void => {
        if (timer !== null) clearTimeout(timer);
        if (this.wakeLoop === finish) this.wakeLoop = null;
        done();
      };
      this.wakeLoop = finish;
    });
  }

  /** The file to send from: orphans first, then rotated files, then the current one. */
  private head(): JournalFile<WebhookEvent> | null {
    while (this.orphanFile === null && this.orphans.length > 0) {
      const path = this.orphans[0]!;
      try {
        this.orphanFile = JournalFile.open(path, webhookEventCodec);
      } catch (err) {
        this.o.logger?.error({ err, file: path }, 'cannot open a webhook queue file of a previous run');
        this.orphans.shift();
        releaseFile(path);
      }
    }
    return this.orphanFile ?? this.sealed[0] ?? this.current;
  }

  /** Deletes a file whose events are all delivered. */
  private finished(file: JournalFile<WebhookEvent>): void {
    if (file === this.orphanFile) {
      this.orphanBytes -= file.bytes;
      this.orphanFile = null;
      this.orphans.shift();
    } else if (file === this.sealed[0]) {
      this.sealed.shift();
    } else {
      this.current = null;
    }
    file.remove();
    releaseFile(file.path);
    this.waiters.notify();
  }

  private readonly badLine = (line: string): void => {
    this.o.logger?.warn({ line: line.slice(0, 200), url: this.shownUrl }, 'unreadable webhook queue line skipped');
  };

  private async run(): Promise<void> {
    const post = this.o.post ?? ((url, events, signal) => postWebhook(url, events, { secret: this.o.secret, timeoutMs: this.o.timeoutMs, signal }));
    while (!this.closed) {
      const file = this.head();
      if (file === null) {
        await this.idle();
        continue;
      }
      if (file === this.current && !file.drained && file.remaining < this.o.batchMax) {
        // Company for the batch: wait out `batchMs` from the oldest unsent event (a push wakes the check).
        const wait = this.pendingSince + this.o.batchMs - Date.now();
        if (wait > 0) {
          await this.idle(wait);
          continue;
        }
      }
      const read: JournalRead<WebhookEvent> | null = file.next(this.o.batchMax, this.badLine);
      if (read === null) {
        if (file === this.current) {
          // Everything sent: the file goes, the next push starts a new one.
          if (file.drained) this.finished(file);
          else await this.idle();
        } else {
          this.finished(file);
        }
        continue;
      }
      const started = Date.now();
      try {
        await post(this.url, read.items, this.abort.signal);
      } catch (err) {
        if (this.closed) break;
        this.failures++;
        this.retry.failed(err, 'webhook POST failed; retrying with backoff', { url: this.shownUrl, events: read.items.length });
        this.waiters.notify();
        await this.retry.backoff();
        continue;
      }
      file.commit(read);
      this.delivered += read.items.length;
      this.retry.succeeded({ url: this.shownUrl });
      // Events that came during the POST waited already.
      this.pendingSince = started;
      if (file !== this.current && file.drained && !this.closed) this.finished(file);
      this.waiters.notify();
    }
  }
}
