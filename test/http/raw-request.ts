/**
 * A hand-written HTTP/1.1 request over a plain socket, for paths that `fetch` and
 * `http.request` would normalise (`/../x`, `/a\b`) before they reach the server.
 */
import { connect } from 'node:net';

/** A parsed response: status, lower-cased headers, raw body bytes. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Sends `METHOD target HTTP/1.1` with `Connection: close` and the given extra header
 * lines, reads until the server closes, and parses the response.
 */
export function rawRequest(port: number, method: string, target: string, headers: string[] = []): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${method} ${target}`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      if (split === -1) {
        reject(new Error(`no response head for ${method} ${target}: ${JSON.stringify(all.toString('latin1'))}`));
        return;
      }
      const lines = all.subarray(0, split).toString('latin1').split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const parsed: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        parsed[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status, headers: parsed, body: all.subarray(split + 4) });
    });
    socket.write(
      `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        headers.map((h) => h + '\r\n').join('') +
        'Connection: close\r\n\r\n',
      'latin1'
    );
  });
}
