import { serialize } from 'node:v8';
import type { AuditSink } from '../audit/audit-sink.js';
import type { BusMessage } from '../bus/bus.js';
import { CloseCode } from '../errors.js';
import { PRIVATE_PREFIX } from '../protocol/frames.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import type { BusRouter } from './bus-router.js';
import type { RedisBridge } from './redis-bridge.js';
import type { SessionEntry } from './registry.js';

/**
 * What a worker that exited cannot say any more, said by the agent for its lost sessions.
 *
 * Members elsewhere of a private channel learn that the lost sessions left. A worker
 * that crashed, or was killed at the drain deadline, cannot record it: the agent
 * writes the `left` rows and each lost session's `session.close` (1006) in the audit
 * trail (`audit` is given then, null otherwise: one that exited by itself recorded its
 * sessions' ends).
 */
export function announceLostSessions(lost: readonly SessionEntry[], audit: AuditSink | null, busRouter: BusRouter, redisBridge: RedisBridge | null, webhooks: Webhooks | null): void {
  const at = new Date();
  for (const s of lost) {
    for (const channel of s.channels) {
      if (!channel.startsWith(PRIVATE_PREFIX)) continue;
      const data = { session: s.id, user: s.user };
      const message: BusMessage = { channel, frame: { type: 'left', channel, data }, exclude: null };
      busRouter.publish(null, channel, serialize(message));
      redisBridge?.publish(message);
      const recipients = busRouter.total(channel) + (redisBridge?.remoteCount(channel) ?? 0);
      audit?.record({ messageId: null, at, sessionId: s.id, userId: s.user, direction: 'out', type: 'left', channel, payload: data, recipients });
    }
    audit?.record({ messageId: null, at, sessionId: s.id, userId: s.user, direction: 'system', type: 'session.close', channel: null, payload: { code: CloseCode.ABNORMAL }, recipients: null });
    webhooks?.tracker.sessionClosed({ id: s.id });
  }
}
