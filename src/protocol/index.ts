/**
 * The protocol area's public surface: frame types and validation, the two codecs, ids,
 * and the client-side helpers.
 */
import type { ProtocolName } from '../store/store.js';
import { binaryCodec } from './binary-codec.js';
import type { Codec } from './codec.js';
import { jsonCodec } from './json-codec.js';

export * from './frames.js';
export * from './codec.js';
export * from './ids.js';
export { jsonCodec, binaryToBase64, containsBinary, encodeServerFrameText } from './json-codec.js';
export { binaryCodec, unpackValue, packValue, type UnpackResult } from './binary-codec.js';
export { encodeClientFrame, decodeServerFrame } from './client-codec.js';
export { SIZE_CORPUS, measureSizeRatio, type SizeReport, type SizeRow } from './size-corpus.js';

/** The codec for a protocol name (`json` or `bin`). */
export function codecFor(name: ProtocolName): Codec {
  return name === 'bin' ? binaryCodec : jsonCodec;
}
