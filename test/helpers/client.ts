import WebSocket from 'ws';
import type { ProtocolName } from '../../src/protocol/codec.js';
import type { ClientFrame, ServerFrame } from '../../src/protocol/frames.js';
import { encodeClientFrame, decodeServerFrame } from '../../src/protocol/client-codec.js';

/** Options of a test client. */
export interface ClientOptions {
  protocol?: ProtocolName;
  token?: string;
  /** Extra upgrade headers. */
  headers?: Record<string, string>;
  /** Path and query (default `/`). */
  path?: string;
  /** Use wss:// and accept a self-signed certificate. */
  tls?: boolean;
  /**
   * Keep the channel positions (`offset`, `epoch`, `recovered`) of `subscribed` and
   * `event` frames. Default false: they are removed, so the tests written before
   * positions existed still compare whole frames; the position tests turn it on.
   */
  positions?: boolean;
}

/** A frame without its position fields (see ClientOptions.positions). */
function withoutPositions(frame: ServerFrame): ServerFrame {
  if (frame.type !== 'event' && frame.type !== 'subscribed') return frame;
  const f = { ...frame } as Record<string, unknown>;
  delete f.offset;
  delete f.epoch;
  delete f.recovered;
  return f as unknown as ServerFrame;
}

/**
 * A real WebSocket client for tests: connects, waits for `accepted`, queues every
 * decoded server frame and lets a test wait for the next matching one.
 */
export class TestClient {
  readonly frames: ServerFrame[] = [];
  sessionId = '';
  closeCode: number | null = null;
  private waiters: Array<{ match: (f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void; reject: (err: unknown) => void; timer: NodeJS.Timeout }> = [];
  /** A frame that did not decode: every wait after it fails with this. */
  private failure: unknown = null;
  private closeWaiters: Array<(code: number) => void> = [];

  private constructor(
    readonly ws: WebSocket,
    readonly protocol: ProtocolName,
    positions = false
  ) {
    // An error in here (a frame that does not decode, a `match` that throws, an assertion
    // in it) rejects the waiting test's promise: it fails now, not at its timeout.
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      let frame: ServerFrame;
      try {
        frame = decodeServerFrame(protocol, isBinary ? data : data.toString('utf8'));
        if (!positions) frame = withoutPositions(frame);
      } catch (err) {
        this.failure ??= err;
        for (const w of this.waiters.splice(0)) w.reject(err);
        return;
      }
      for (let i = 0; i < this.waiters.length; i++) {
        const w = this.waiters[i]!;
        let matched: boolean;
        try {
          matched = w.match(frame);
        } catch (err) {
          this.waiters.splice(i--, 1);
          w.reject(err);
          continue;
        }
        if (matched) {
          this.waiters.splice(i, 1);
          w.resolve(frame);
          return;
        }
      }
      this.frames.push(frame);
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const w of this.closeWaiters) w(code);
    });
  }

  /** Connects and resolves once `accepted` arrived. Rejects with the HTTP status on a refused upgrade. */
  static async connect(port: number, options: ClientOptions = {}): Promise<TestClient> {
    const protocol = options.protocol ?? 'json';
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (protocol === 'bin' && !options.headers) headers['x-bin-protocol'] = '1';
    const scheme = options.tls ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://127.0.0.1:${port}${options.path ?? '/'}`, { headers, rejectUnauthorized: false });
    const client = new TestClient(ws, protocol, options.positions === true);
    const accepted = client.next((f) => f.type === 'accepted', 5000);
    accepted.catch(() => undefined); // a refused upgrade rejects below instead
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    }).catch((err: unknown) => {
      ws.terminate();
      for (const w of client.waiters) clearTimeout(w.timer);
      client.waiters = [];
      throw err;
    });
    const f = await accepted;
    if (f.type === 'accepted') client.sessionId = f.data;
    return client;
  }

  send(frame: ClientFrame): void {
    this.ws.send(encodeClientFrame(this.protocol, frame));
  }

  /** Sends raw bytes or text as they are. */
  sendRaw(data: string | Buffer, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  /** The next frame matching `match` (already queued or yet to come). */
  next(match: (f: ServerFrame) => boolean = () => true, timeoutMs = 3000): Promise<ServerFrame> {
    if (this.failure !== null) return Promise.reject(this.failure);
    let i: number;
    try {
      i = this.frames.findIndex(match);
    } catch (err) {
      return Promise.reject(err);
    }
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching frame within ${timeoutMs} ms; queued: ${JSON.stringify(this.frames).slice(0, 500)}`));
      }, timeoutMs);
      const waiter = {
        timer,
        match,
        resolve: (f: ServerFrame) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        }
      };
      this.waiters.push(waiter);
    });
  }

  /** The next frame of a type. */
  nextOf<T extends ServerFrame['type']>(type: T, timeoutMs = 3000): Promise<Extract<ServerFrame, { type: T }>> {
    return this.next((f) => f.type === type, timeoutMs) as Promise<Extract<ServerFrame, { type: T }>>;
  }

  /** Subscribes and waits for the answer (`subscribed`, `unauthorized` or `error`). */
  async subscribe(channel: string, token?: string): Promise<ServerFrame> {
    this.send(token === undefined ? { type: 'subscribe', channel } : { type: 'subscribe', channel, token });
    return this.next((f) => (f.type === 'subscribed' || f.type === 'unauthorized' || f.type === 'error') && f.channel === channel);
  }

  /** Resolves with the close code once closed. */
  closed(timeoutMs = 5000): Promise<number> {
    if (this.closeCode !== null) return Promise.resolve(this.closeCode);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('not closed in time')), timeoutMs);
      this.closeWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  /** Asserts nothing more arrives for `ms` (returns what did). */
  async quiet(ms = 200): Promise<ServerFrame[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.frames.splice(0);
  }

  close(): Promise<number> {
    this.ws.close(1000);
    return this.closed();
  }
}

/** The status an upgrade gets: 101 with the connected client, or the refusal's status (-1: no HTTP answer). */
export async function upgradeStatus(port: number, headers: Record<string, string> = {}): Promise<{ status: number; client: TestClient | null }> {
  try {
    return { status: 101, client: await TestClient.connect(port, { headers }) };
  } catch (err) {
    return { status: (err as { status?: number }).status ?? -1, client: null };
  }
}
