import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One event as a receiver gets it. */
export interface ReceivedEvent {
  id: string;
  name: string;
  channel: string | null;
  session: string;
  user: string | null;
  time_ms: number;
}

/** One POST as it arrived. */
export interface ReceivedPost {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
  events: ReceivedEvent[];
}

/** How the receiver answers: 200, 503, or not at all (the port refuses connections). */
export type ReceiverMode = 'ok' | '503' | 'refuse';

/**
 * A real webhook receiver (node:http on 127.0.0.1, port 0 at first, the same port after a
 * `refuse` spell). Every POST is kept, answered or not; `events` has the 2xx-answered ones.
 */
export class Receiver {
  readonly posts: ReceivedPost[] = [];
  /** Attempts refused while down (`503`), and connection attempts are not seen at all while `refuse`. */
  failed = 0;
  private server: Server | null = null;
  private mode: ReceiverMode = 'ok';
  port = 0;

  static async start(mode: ReceiverMode = 'ok'): Promise<Receiver> {
    const r = new Receiver();
    r.mode = mode === 'refuse' ? 'ok' : mode;
    await r.listen(0);
    if (mode === 'refuse') await r.setMode('refuse');
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Events of the POSTs answered 2xx, in arrival order. */
  get events(): ReceivedEvent[] {
    return this.posts.filter((p) => p.status === 200).flatMap((p) => p.events);
  }

  /** Events of the POSTs answered 2xx, each idempotency key once. */
  get unique(): ReceivedEvent[] {
    const seen = new Set<string>();
    return this.events.filter((e) => !seen.has(e.id) && seen.add(e.id) !== undefined);
  }

  async setMode(mode: ReceiverMode): Promise<void> {
    if (mode === 'refuse' && this.server !== null) {
      const s = this.server;
      this.server = null;
      s.closeAllConnections();
      await new Promise<void>((done) => s.close(() => done()));
    } else if (mode !== 'refuse' && this.server === null) {
      await this.listen(this.port);
    }
    this.mode = mode;
  }

  async close(): Promise<void> {
    await this.setMode('refuse');
  }

  private listen(port: number): Promise<void> {
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const status = this.mode === 'ok' ? 200 : 503;
        let events: ReceivedEvent[] = [];
        try {
          events = (JSON.parse(body) as { events: ReceivedEvent[] }).events;
        } catch {
          // Kept with no events; the test sees the body.
        }
        this.posts.push({ headers: req.headers, body, status, events });
        if (status !== 200) this.failed++;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'down');
      });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }
}
