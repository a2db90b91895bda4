import type { Transport, PreparedFrame } from '../transport/transport.js';
import type { Codec } from '../protocol/codec.js';
import type { EventFrame, ServerFrame } from '../protocol/frames.js';
import type { ChannelMember } from './member.js';
import type { RecoveryTable } from './recovery.js';

/**
 * Writes `frame` to every open member but `excludeId`, encoding it at most once per
 * codec. Returns the number of sessions written to.
 */
export function fanOut<M extends ChannelMember>(transport: Transport, recoveries: RecoveryTable<M>, members: Iterable<M> | undefined, frame: ServerFrame, excludeId: string | null): number {
  if (members === undefined) return 0;
  const recovering = recoveries.size !== 0 && frame.type === 'event' ? recoveries.of(frame.channel) : undefined;
  let codecA: Codec | null = null;
  let bytesA: PreparedFrame | null = null;
  let codecB: Codec | null = null;
  let bytesB: PreparedFrame | null = null;
  let n = 0;
  for (const s of members) {
    if (s.id === excludeId || s.state !== 'open') continue;
    if (recovering !== undefined) {
      const entry = recovering.get(s);
      if (entry !== undefined && !recoveries.pass(s, entry, frame as EventFrame)) continue;
    }
    const codec = s.codec;
    let bytes: PreparedFrame;
    if (codec === codecA) bytes = bytesA!;
    else if (codec === codecB) bytes = bytesB!;
    else {
      bytes = transport.prepare(codec.encode(frame), codec.binary);
      if (codecA === null) {
        codecA = codec;
        bytesA = bytes;
      } else {
        codecB = codec;
        bytesB = bytes;
      }
    }
    s.write(bytes);
    n++;
  }
  return n;
}
