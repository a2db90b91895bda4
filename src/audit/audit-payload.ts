/**
 * How a message's data is stored in `audit.payload` / `audit.payload_bin`.
 *
 * - `payload` is JSON (text in SQLite, jsonb in PostgreSQL): the data as a JSON client
 *   saw it — binary values as base64 strings, BigInts as numbers, dates as ISO strings.
 *   It is always valid for jsonb: NUL characters and lone surrogates (which jsonb
 *   refuses) are replaced by U+FFFD.
 * - `payload_bin` is set only when that JSON is not the exact value (a binary value,
 *   a date, a BigInt, a non-finite number, a NUL or lone surrogate in a string): the
 *   exact value as plain MessagePack, the binary protocol's own encoding.
 *
 * So a SQL reader sees readable JSON, and `zenconn audit` / `GET /api/audit` with
 * X-Bin-Protocol give back the bytes a binary client sent, unchanged. Data without any
 * of those (the common case) costs one walk and one JSON.stringify, in the writer,
 * never on the hot path.
 */
import { binaryToBase64 } from '../protocol/json-codec.js';
import { packValue } from '../protocol/msgpack-encoder.js';
import { unpackValue } from '../protocol/msgpack-reader.js';

/** The stored form of one payload; both null for no payload. */
export interface EncodedPayload {
  json: string | null;
  bin: Buffer | null;
}

/** A JSON escape jsonb refuses: `\u0000`, or a surrogate JSON.stringify escaped because it is unpaired (preceded by an even run of backslashes). */
const UNSAFE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/gi;

/** Whether JSON.stringify gives back exactly `v` (plain objects, arrays, strings, finite numbers, booleans, null). */
function isExactJson(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object': {
      if (v === null) return true;
      if (depth > 200) return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!isExactJson(v[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) return false;
      const o = v as Record<string, unknown>;
      for (const k in o) if (!isExactJson(o[k], depth + 1)) return false;
      return true;
    }
    default:
      return false; // bigint, undefined, function, symbol
  }
}

/** Serializes a payload for the `audit` table (see the module comment). */
export function encodePayload(value: unknown): EncodedPayload {
  if (value === null || value === undefined) return { json: null, bin: null };
  let exact = isExactJson(value, 0);
  let json: string;
  try {
    json = JSON.stringify(exact ? value : binaryToBase64(value)) ?? 'null';
  } catch {
    // A cycle or a throwing toJSON: not data a decoder makes, but never fail the batch for it.
    exact = false;
    json = '{"unserializable":true}';
  }
  UNSAFE_ESCAPE.lastIndex = 0;
  if (UNSAFE_ESCAPE.test(json)) {
    exact = false;
    json = json.replace(UNSAFE_ESCAPE, '$1\\ufffd');
  }
  if (exact) return { json, bin: null };
  let bin: Buffer | null;
  try {
    bin = packValue(value); // the protocol's own plain MessagePack
  } catch {
    bin = null;
  }
  return { json, bin };
}

/** The exact stored value: MessagePack when there is some, otherwise the JSON. */
export function decodePayload(json: string | null, bin: Uint8Array | null): unknown {
  if (bin !== null) {
    // packValue wrote it; no depth bound beyond the stack's, as with msgpackr's unpacker before.
    const r = unpackValue(bin, Infinity);
    if (!r.ok) throw new Error(`invalid payload_bin: ${r.reason}`);
    return r.value;
  }
  return json === null ? null : JSON.parse(json);
}

/** The payload as JSON clients saw it (what JSON and ndjson answers carry). */
export function payloadJsonView(json: string | null): unknown {
  return json === null ? null : JSON.parse(json);
}
