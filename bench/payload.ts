/**
 * The bench message: what the publisher broadcasts and every subscriber times.
 *
 * `{"t":<send time, ms>,"s":<sequence>,"m":<1 if in the measured window>,"p":"xxx…"}`,
 * padded with `p` so that its JSON text is exactly `PAYLOAD_BYTES` long. The same
 * object is the `data` of every protocol (JSON text, MessagePack, Socket.IO), so the
 * application payload is the same in every row.
 *
 * `t` is `performance.timeOrigin + performance.now()`: a clock that all processes on
 * the machine share to within microseconds, unlike `performance.now()` alone.
 */

/** Size of the payload's JSON text. */
export const PAYLOAD_BYTES = 100;

/** The `data` of every bench broadcast. */
export interface Payload {
  /** Send time, ms since the epoch, sub-millisecond precision. */
  t: number;
  /** Sequence number, from 0, one publisher. */
  s: number;
  /** 1 when sent inside the measured window, 0 during warm-up. */
  m: 0 | 1;
  /** Padding. */
  p: string;
}

/** Now, on the clock shared by every process of the run, in ms. */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** The payload for sequence `s`, sent now. */
export function makePayload(s: number, measured: boolean, bytes = PAYLOAD_BYTES): Payload {
  const payload: Payload = { t: sharedNow(), s, m: measured ? 1 : 0, p: '' };
  const bare = JSON.stringify(payload).length;
  payload.p = 'x'.repeat(Math.max(0, bytes - bare));
  return payload;
}
