import type { AuditRecord } from '../store/store.js';
import { uuidV7Batch } from '../protocol/ids.js';
import { encodePayload, type EncodedPayload } from './audit-payload.js';
import type { AuditEntry } from './audit-sink.js';

/** A run of rows with consecutive sequence numbers [start, end), serialized. */
export interface AuditBatch {
  start: number;
  end: number;
  rows: AuditRecord[];
}

/**
 * The audit writer's queue: `push` (the hot path) appends an entry, nothing more; `take`
 * turns the oldest entries into a batch of rows — ids assigned (UUID v7), payloads
 * serialized. Rows get a sequence number by position.
 */
export class AuditBatcher {
  private queue: AuditEntry[] = [];
  /** Sequence number of `queue[0]`: rows taken from the queue so far. */
  private taken = 0;
  private batchCount = 0;
  private lastPayload: unknown = undefined;
  private lastEncoded: EncodedPayload = { json: null, bin: null };

  constructor(private readonly serverId: string) {}

  /** Entries recorded and not yet taken. */
  get queued(): number {
    return this.queue.length;
  }

  /** Entries recorded so far: the sequence number the next one gets. */
  get recorded(): number {
    return this.taken + this.queue.length;
  }

  /** Batches taken so far. */
  get batches(): number {
    return this.batchCount;
  }

  /** Queues an entry; returns the queue's length. */
  push(entry: AuditEntry): number {
    return this.queue.push(entry);
  }

  /** Takes up to `max` queued entries as a batch. */
  take(max: number): AuditBatch {
    const q = this.queue;
    let entries: AuditEntry[];
    if (q.length <= max) {
      entries = q;
      this.queue = [];
    } else {
      entries = q.splice(0, max);
    }
    const start = this.taken;
    this.taken += entries.length;
    this.batchCount++;
    const rows: AuditRecord[] = new Array(entries.length);
    const ids = uuidV7Batch(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      // A broadcast's `in` and `out` rows share one payload object: serialize it once.
      if (e.payload !== this.lastPayload || i === 0) {
        this.lastPayload = e.payload;
        this.lastEncoded = encodePayload(e.payload);
      }
      rows[i] = {
        id: ids[i]!,
        messageId: e.messageId,
        at: e.at,
        serverId: this.serverId,
        sessionId: e.sessionId,
        userId: e.userId,
        direction: e.direction,
        type: e.type,
        channel: e.channel,
        recipients: e.recipients,
        payload: this.lastEncoded.json,
        payloadBin: this.lastEncoded.bin
      };
      if (e.offset !== undefined) {
        rows[i]!.eventOffset = e.offset;
        rows[i]!.eventEpoch = e.epoch ?? null;
      }
    }
    this.lastPayload = undefined;
    return { start, end: this.taken, rows };
  }
}
