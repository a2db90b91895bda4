/**
 * The audit seam: every message the system produces or receives is handed to an
 * `AuditSink` on the hot path. `record` must be cheap and synchronous (append to a
 * queue); durability is asked for separately with `afterDurable`.
 *
 * Contract:
 * - `record` never throws and never blocks.
 * - `afterDurable(fn)` calls `fn` once every entry recorded BEFORE the call is durable
 *   (in the database or the on-disk journal), in call order. With durability `async`
 *   or the audit trail off, it calls `fn` synchronously.
 */

/** `in` = received from a client or the HTTP API, `out` = produced by the server. */
export type AuditDirection = 'in' | 'out' | 'system';

export interface AuditEntry {
  /** The event id sent to clients, shared by a broadcast's `in` row and its event's `out` row. */
  messageId: string | null;
  at: Date;
  sessionId: string | null;
  userId: string | null;
  direction: AuditDirection;
  /** Frame type (`subscribe`, `broadcast`, `event`, `error`, …) or `session.open` / `session.close`. */
  type: string;
  channel: string | null;
  /** The message's data as it was sent (any JSON/MessagePack value), or details. */
  payload: unknown;
  /** Sessions an `out` message went to (null where it does not apply). */
  recipients: number | null;
  /** An `out` event's position on its channel, when this process gave it (docs/architecture.md, Positions). */
  offset?: number;
  epoch?: string;
}

export interface AuditSink {
  record(entry: AuditEntry): void;
  afterDurable(fn: () => void): void;
  /** Whether the sink can currently make entries durable (for /readyz). */
  readonly healthy: boolean;
  /** Whether the audit storage is past `--audit-max-bytes` (for /readyz). */
  readonly full: boolean;
  /**
   * Asked before a broadcast is sent: true (and counted) while the audit storage is full,
   * so the broadcast is refused with `audit full`. A boolean read on the hot path.
   */
  refuseBroadcast(): boolean;
  /** Write out what is queued (shutdown). */
  flush(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** The sink used when the audit trail is off. */
export class NullAuditSink implements AuditSink {
  readonly healthy = true;
  readonly full = false;
  refuseBroadcast(): boolean {
    return false;
  }
  record(): void {}
  afterDurable(fn: () => void): void {
    fn();
  }
  async flush(): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {}
}
