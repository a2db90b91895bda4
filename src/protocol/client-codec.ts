/**
 * The client's side of both protocols, for tests, the load generator and Node clients:
 * encode what a client sends, decode what the server sends.
 */
import type { ProtocolName } from '../store/store.js';
import {
  decodeServerFrame as decodeBinaryServerFrame,
  encodeClientFrame as encodeBinaryClientFrame
} from './binary-codec.js';
import type { ClientFrame, ServerFrame } from './frames.js';
import {
  decodeServerFrame as decodeJsonServerFrame,
  encodeClientFrame as encodeJsonClientFrame
} from './json-codec.js';

/**
 * A client frame ready for `WebSocket.send`: a string (text frame) for `json`, a Buffer
 * (binary frame) for `bin`. Binary values in a JSON broadcast's data become base64.
 */
export function encodeClientFrame(protocol: ProtocolName, frame: ClientFrame): string | Buffer {
  return protocol === 'bin' ? encodeBinaryClientFrame(frame) : encodeJsonClientFrame(frame);
}

/**
 * A server frame from what the socket delivered (string, Buffer, Uint8Array or
 * ArrayBuffer). Throws a TypeError (or SyntaxError for bad JSON) on a malformed frame.
 */
export function decodeServerFrame(protocol: ProtocolName, data: string | Uint8Array | ArrayBuffer): ServerFrame {
  if (protocol === 'bin') {
    if (typeof data === 'string') throw new TypeError('malformed server frame: text frame on a binary session');
    return decodeBinaryServerFrame(data);
  }
  return decodeJsonServerFrame(data);
}
