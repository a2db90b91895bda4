import type { HubObserver } from './hub.js';
import type { ChannelMember } from './member.js';

/** One observer telling two (the agent's registry with `--workers 0`, and the webhooks). */
export function bothObservers<M extends ChannelMember>(a: HubObserver<M> | null, b: HubObserver<M> | null): HubObserver<M> | null {
  if (a === null || b === null) return a ?? b;
  return {
    sessionOpened: (s) => {
      a.sessionOpened(s);
      b.sessionOpened(s);
    },
    sessionClosed: (s, code) => {
      a.sessionClosed(s, code);
      b.sessionClosed(s, code);
    },
    subscribed: (s, ch) => {
      a.subscribed(s, ch);
      b.subscribed(s, ch);
    },
    unsubscribed: (s, ch) => {
      a.unsubscribed(s, ch);
      b.unsubscribed(s, ch);
    }
  };
}
