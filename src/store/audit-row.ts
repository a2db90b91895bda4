import type { AuditRecord } from './store.js';

/**
 * An `audit` row as both stores' drivers return it; `At` is how the driver gives the
 * timestamp (SQLite: the ISO text; PostgreSQL: a Date).
 */
export interface AuditDbRow<At> {
  id: string;
  message_id: string | null;
  at: At;
  server_id: string;
  session_id: string | null;
  user_id: string | null;
  direction: string;
  type: string;
  channel: string | null;
  payload: string | null;
  payload_bin: Buffer | null;
  recipients: number | null;
}

/** An audit row as the store hands it on, with its timestamp already read as `at`. */
export function auditRecordOf<At>(r: AuditDbRow<At>, at: Date): AuditRecord {
  return {
    id: r.id,
    messageId: r.message_id,
    at,
    serverId: r.server_id,
    sessionId: r.session_id,
    userId: r.user_id,
    direction: r.direction,
    type: r.type,
    channel: r.channel,
    recipients: r.recipients,
    payload: r.payload,
    payloadBin: r.payload_bin
  };
}
