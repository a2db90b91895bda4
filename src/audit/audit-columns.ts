import type { AuditRecord } from '../store/store.js';

/** The columns a journal line and an API row share, by column name, in table order. */
export function auditColumns(r: AuditRecord) {
  return {
    id: r.id,
    message_id: r.messageId,
    at: r.at.toISOString(),
    server_id: r.serverId,
    session_id: r.sessionId,
    user_id: r.userId,
    direction: r.direction,
    type: r.type,
    channel: r.channel
  };
}
