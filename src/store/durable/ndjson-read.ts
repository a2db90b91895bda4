import { readSync } from 'node:fs';

/** What one read of an append-only ndjson file took. */
export interface NdjsonRead<T> {
  /** Decoded lines, in order. */
  items: T[];
  /** Lines that did not decode (a torn last line after a crash, a hand edit), raw. */
  bad: string[];
  /** Lines consumed, good or bad (blank lines count). */
  lines: number;
  /** Byte offset just past the last line consumed. */
  end: number;
}

const READ_CHUNK_BYTES = 1 << 20;

/**
 * Reads up to `max` lines of the ndjson file open on `fd`, from byte `from` to `size`,
 * decoding each with `decode`. A last line without its newline (a write torn by a crash) is read as a line;
 * a line longer than the buffer grows the buffer.
 */
export function readNdjson<T>(fd: number, from: number, size: number, max: number, decode: (line: string) => T): NdjsonRead<T> {
  const out: NdjsonRead<T> = { items: [], bad: [], lines: 0, end: from };
  let buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let pos = from;
  const take = (line: string): void => {
    out.lines++;
    if (line.trim() === '') return;
    try {
      out.items.push(decode(line));
    } catch {
      out.bad.push(line);
    }
  };
  while (out.lines < max && pos < size) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    let start = 0;
    while (out.lines < max) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      take(chunk.toString('utf8', start, nl));
      start = nl + 1;
    }
    if (start === 0 && out.lines < max) {
      if (pos + n >= size) {
        take(chunk.toString('utf8'));
        start = n;
      } else {
        buf = Buffer.allocUnsafe(buf.length * 2);
        continue;
      }
    }
    pos += start;
  }
  out.end = pos;
  return out;
}
