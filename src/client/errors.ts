/** Why a request failed, or what went wrong outside any request (the client's `error` event). */
export class ZenError extends Error {
  /**
   * @param code `disconnected` (the connection dropped before the answer: the request may
   *   or may not have been applied), `closed` (the client was closed), `queue full`,
   *   `server` (an `error` frame: see `reasons`), `token` (no token, or a refresh refused)
   *   or `frame` (a frame from the server that did not decode).
   * @param reasons The reasons of the server's `error` frame (docs/protocol.md, Error reasons).
   */
  constructor(
    readonly code: 'disconnected' | 'closed' | 'queue full' | 'server' | 'token' | 'frame',
    message: string,
    readonly reasons: string[] = []
  ) {
    super(message);
    this.name = 'ZenError';
  }
}
