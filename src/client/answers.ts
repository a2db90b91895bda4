/**
 * Request/answer correlation: which pending request (outbox.ts) or subscribe a server's
 * answer or refusal belongs to. The protocol's answers carry no request id: they are
 * matched by kind and channel, a refusal by its first reason (REFUSAL_KINDS).
 */
import { ZenError } from './errors.js';
import type { Outbox, RequestKind } from './outbox.js';
import type { Subscription } from './subscription.js';
import type { TokenRefresher } from './token-refresher.js';
import type { InFrame, Position } from './wire.js';

/** What the correlation reads of the client (the same maps and parts it owns). */
export interface AnswersHost {
  readonly subs: ReadonlyMap<string, Subscription>;
  /** The since each subscribe sent and not yet answered asked for, by channel. */
  readonly subscribing: Map<string, Position | undefined>;
  readonly outbox: Outbox;
  readonly tokens: TokenRefresher;
  /** Emits the client's `error` event (nobody's refusal). */
  emitError(err: ZenError): void;
}

/** A server frame that answers a request. */
export type AnswerFrame = Extract<InFrame, { type: 'received' | 'history' | 'presence' }>;

export class Answers {
  constructor(private readonly host: AnswersHost) {}

  /** `received`, `history` or `presence`: resolves the oldest request of that kind on the channel. */
  answered(f: AnswerFrame): void {
    const outbox = this.host.outbox;
    switch (f.type) {
      case 'received':
        outbox.take((r) => r.kind === 'broadcast' && r.channel === f.channel)?.resolve({ count: f.count } as never);
        return;
      case 'history': {
        const { type: _type, channel: _channel, ...result } = f;
        outbox.take((r) => r.kind === 'history' && r.channel === f.channel)?.resolve(result as never);
        return;
      }
      case 'presence':
        outbox.take((r) => r.kind === 'presence' && r.channel === f.channel)?.resolve({ members: f.members, truncated: f.truncated } as never);
        return;
    }
  }

  /** An `error` frame: a refresh's, a subscribe's, a request's, or nobody's. */
  error(channel: string, errors: string[]): void {
    if (channel === '*' && this.host.tokens.refused(errors)) return;
    if (channel === '*' && errors.includes('rate limited')) {
      // The frame the server dropped is most likely the newest one sent.
      const r = this.host.outbox.takeNewest();
      const err = new ZenError('server', 'rate limited', errors);
      if (r) r.reject(err);
      else this.host.emitError(err);
      return;
    }
    this.refused(channel, errors, false);
  }

  /**
   * A refusal about `channel`: a pending subscribe's, unless its reason is one only
   * requests get; else the oldest request in flight on the channel of a kind the reason
   * can answer.
   */
  refused(channel: string, errors: string[], unauthorized: boolean): void {
    const sub = this.host.subs.get(channel);
    // A reason that only requests get (`forbidden` answers a history request) is not the subscribe's.
    const kinds = unauthorized ? undefined : REFUSAL_KINDS.get(errors[0] ?? '');
    if (sub && this.host.subscribing.has(channel) && !kinds) {
      this.host.subscribing.delete(channel);
      if (unauthorized) sub.deliver('unauthorized', { channel });
      else sub.deliver('error', { errors });
      return;
    }
    const r = this.host.outbox.take((x) => x.channel === channel && (!kinds || kinds.includes(x.kind)));
    if (r) r.reject(new ZenError('server', errors.join(', '), errors));
    else if (sub) sub.deliver('error', { errors });
    else this.host.emitError(new ZenError('server', `${channel}: ${errors.join(', ')}`, errors));
  }
}

/**
 * Which requests a refusal can answer, by its first reason (docs/protocol.md): the
 * requests of one channel are answered at different times (a `received` waits for the
 * audit trail, a refusal does not), so the reason picks among them. Other reasons
 * answer the oldest request of the channel.
 */
const REFUSAL_KINDS: ReadonlyMap<string, readonly RequestKind[]> = new Map<string, readonly RequestKind[]>([
  ['not subscribed', ['broadcast', 'presence']],
  ['bus unavailable', ['broadcast']],
  ['audit full', ['broadcast']],
  ['missing data', ['broadcast']],
  ['data too deep', ['broadcast']],
  ['forbidden', ['history']],
  ['history unavailable', ['history']],
  ['invalid since', ['history']],
  ['invalid limit', ['history']],
  ['presence unavailable', ['presence']]
]);
