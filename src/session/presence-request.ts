import type { Hub } from '../channels/hub.js';
import { mayAskPresence, type PresenceSource } from '../channels/presence.js';
import type { AuditSink } from '../audit/audit-sink.js';
import type { Session } from './session.js';

/** Why a presence request was refused or failed (reasons of its `error` frame). */
export const PresenceRefusal = {
  /** Neither a member of the channel nor a holder of `admin`. */
  NOT_SUBSCRIBED: 'not subscribed',
  /** The members could not be gathered now (a worker whose agent does not answer). */
  UNAVAILABLE: 'presence unavailable'
} as const;

/**
 * Handles `presence`: a member of the channel (or a holder of `admin`) gets the
 * `presence` frame with at most `limit` members; anyone else an `error` frame
 * `not subscribed`. The answer may take a round trip (a worker asks its agent): frames
 * the client sent after it may be answered first.
 */
export function answerPresence(session: Session, channel: string, hub: Hub<Session>, audit: AuditSink, source: PresenceSource, limit: number): void {
  audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'in', type: 'presence', channel, payload: null, recipients: null });
  if (!mayAskPresence(session.identity, session.channels.has(channel))) {
    hub.sendError(session, channel, [PresenceRefusal.NOT_SUBSCRIBED]);
    return;
  }
  void source.members(channel, limit).then((list) => {
    if (session.state !== 'open') return;
    if (list === null) {
      hub.sendError(session, channel, [PresenceRefusal.UNAVAILABLE]);
      return;
    }
    session.send({ type: 'presence', channel, members: list.members, truncated: list.truncated });
    audit.record({ messageId: null, at: new Date(), sessionId: session.id, userId: session.userId, direction: 'out', type: 'presence', channel, payload: { members: list.members.length, truncated: list.truncated }, recipients: 1 });
  });
}
