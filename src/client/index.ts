/**
 * `zenconn/client`: the first-party client library (docs/client.md). ESM, no Node-only
 * import on its browser path; also served as one file at `/zenconn/client.js`.
 *
 * ```js
 * import { connect } from 'zenconn/client';
 * const client = connect('ws://localhost:8080/', { token });
 * client.subscribe('news', (e) => console.log(e.data));
 * await client.broadcast('news', { text: 'hello' });
 * ```
 */
export { connect, ZenClient, type ClientState, type ConnectOptions, type ClientEvents, type StateChange } from './client.js';
export { ZenError } from './errors.js';
export { jwtExp } from './token-refresher.js';
export {
  Subscription,
  type SubscriptionState,
  type SubscriptionEvents,
  type SubscribedInfo,
  type UnrecoveredInfo,
  type HistoryOptions,
  type HistoryResult,
  type PresenceResult
} from './subscription.js';
export { backoffDelay, BACKOFF_DEFAULTS, type BackoffOptions } from './backoff.js';
export type { ChannelEvent, Member, Position, Protocol } from './wire.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
export { pack, unpack, MsgpackError } from './msgpack.js';
