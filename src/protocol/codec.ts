import type { ClientFrame, DecodeFailure, ServerFrame } from './frames.js';

/** The wire protocol a session speaks; stored in `sessions.protocol`. */
export type ProtocolName = 'json' | 'bin';

/**
 * An encoding of the protocol. `json-codec.ts` and `binary-codec.ts` implement it.
 *
 * Contract:
 * - `decode` never throws, whatever the bytes: a bad frame is a `DecodeFailure`
 *   (answered with an `error` frame; the session stays open). It validates the frame
 *   fully: type, channel syntax (CHANNEL_RE; `*` only for broadcast), token type.
 * - `encode` is pure and deterministic; the fan-out calls it once per protocol per
 *   message and writes the same bytes to every recipient.
 * - `binary` says which WebSocket opcode the encoded bytes travel in.
 */
export interface Codec {
  readonly name: ProtocolName;
  /** true: binary frames (opcode 2); false: text frames (opcode 1). */
  readonly binary: boolean;
  decode(data: Buffer, isBinary: boolean): ClientFrame | DecodeFailure;
  encode(frame: ServerFrame): Buffer;
}

/** Tells a decode result apart. */
export function isDecodeFailure(v: ClientFrame | DecodeFailure): v is DecodeFailure {
  return (v as DecodeFailure).errors !== undefined;
}
