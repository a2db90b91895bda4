import type { JournalCodec } from './durable/journal-file.js';
import { fileLabel, ownFilePath } from './durable/journal-claim.js';
import type { ProtocolName } from '../protocol/codec.js';
import type { SessionCloseRecord, SessionOpenRecord } from './store.js';

/**
 * The record writer's on-disk spool format: a durable journal (see durable/) of ndjson
 * lines, one JSON object per line, in the order the records happened.
 *
 *   {"t":"open","id":"…","serverId":"…","remoteAddr":"…","userAgent":null,"userId":null,"protocol":"json","connectedAt":"2026-…Z"}
 *   {"t":"close","id":"…","disconnectedAt":"2026-…Z","closeCode":1000,"bytesIn":12,"bytesOut":34,"messagesIn":1,"messagesOut":2}
 *
 * A file is named `<label>.<pid>.ndjson` (label = the writer's server id) or, once
 * another process has claimed it, `<label>.<pid>.<tag>.ndjson`.
 */

/** One session record, as the writer queues and spools it. */
export type SpoolEntry =
  | { kind: 'open'; record: SessionOpenRecord }
  | { kind: 'close'; record: SessionCloseRecord };

/** Encodes one entry as a line, newline included. */
export function encodeEntry(e: SpoolEntry): string {
  if (e.kind === 'open') {
    const o = e.record;
    return (
      JSON.stringify({
        t: 'open',
        id: o.id,
        serverId: o.serverId,
        remoteAddr: o.remoteAddr,
        userAgent: o.userAgent,
        userId: o.userId,
        protocol: o.protocol,
        connectedAt: o.connectedAt.toISOString()
      }) + '\n'
    );
  }
  const c = e.record;
  return (
    JSON.stringify({
      t: 'close',
      id: c.id,
      disconnectedAt: c.disconnectedAt.toISOString(),
      closeCode: c.closeCode,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      messagesIn: c.messagesIn,
      messagesOut: c.messagesOut
    }) + '\n'
  );
}

function field<T>(o: Record<string, unknown>, key: string, ok: (v: unknown) => v is T): T {
  const v = o[key];
  if (!ok(v)) throw new Error(`bad spool field "${key}"`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string';
const isStringOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isProtocol = (v: unknown): v is ProtocolName => v === 'json' || v === 'bin';
function date(o: Record<string, unknown>, key: string): Date {
  const d = new Date(field(o, key, isString));
  if (Number.isNaN(d.getTime())) throw new Error(`bad spool field "${key}"`);
  return d;
}

/** Decodes one line (without its newline); throws on anything malformed. */
export function decodeEntry(line: string): SpoolEntry {
  const o: unknown = JSON.parse(line);
  if (typeof o !== 'object' || o === null) throw new Error('spool line is not an object');
  const r = o as Record<string, unknown>;
  if (r.t === 'open') {
    return {
      kind: 'open',
      record: {
        id: field(r, 'id', isString),
        serverId: field(r, 'serverId', isString),
        remoteAddr: field(r, 'remoteAddr', isString),
        userAgent: field(r, 'userAgent', isStringOrNull),
        userId: field(r, 'userId', isStringOrNull),
        protocol: field(r, 'protocol', isProtocol),
        connectedAt: date(r, 'connectedAt')
      }
    };
  }
  if (r.t === 'close') {
    return {
      kind: 'close',
      record: {
        id: field(r, 'id', isString),
        disconnectedAt: date(r, 'disconnectedAt'),
        closeCode: field(r, 'closeCode', isCount),
        bytesIn: field(r, 'bytesIn', isCount),
        bytesOut: field(r, 'bytesOut', isCount),
        messagesIn: field(r, 'messagesIn', isCount),
        messagesOut: field(r, 'messagesOut', isCount)
      }
    };
  }
  throw new Error('spool line has no known "t"');
}

/** A spool file name's label: the server id with anything but `[A-Za-z0-9_-]` replaced. */
export function spoolLabel(serverId: string): string {
  return fileLabel(serverId);
}

/** The path of the spool file a writer with this label owns in this process. */
export function ownSpoolPath(dir: string, label: string): string {
  return ownFilePath(dir, label);
}

/** The spool's line format. */
export const spoolCodec: JournalCodec<SpoolEntry> = { encode: encodeEntry, decode: decodeEntry };
