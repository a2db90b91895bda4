import type { Socket } from 'node:net';
import { serialize, deserialize } from 'node:v8';
import { REGISTRY_COALESCE_MS } from './ipc-batcher.js';

/** Writes to a peer not yet taken by the kernel above which deliveries to it are dropped (it stopped reading). */
export const MAX_PEER_UNSENT_BATCHES = 4096;
/** Largest record a peer may send (a message is bounded by `maxPayloadBytes` long before this). */
export const MAX_PEER_RECORD_BYTES = 256 * 1024 * 1024;

/** Record kinds on a peer link. */
const DELIVER = 1;
const CONTROL = 2;
/** Record header: u32 body length, u8 kind. */
const HEADER_BYTES = 5;

/** What a worker tells a peer about routing (inside a CONTROL record). */
export type PeerControl =
  /** My member count of `channel` (`*` = my sessions); 0 = send me nothing for it. Coalesced per turn. */
  | { t: 'count'; channel: string; count: number }
  /** All my counts were sent: route by them from now on. */
  | { t: 'table-end' }
  /** Answer `synced` once the counts before this are in effect. */
  | { t: 'sync'; id: number }
  | { t: 'synced'; id: number };

/** What a link hands to its owner. */
export interface PeerLinkHandler {
  /** A v8-serialized `BusMessage` for this worker's members. */
  deliver(payload: Uint8Array): void;
  control(item: PeerControl): void;
  /** The link closed (the peer exited, or sent something unreadable). */
  closed(): void;
}

/**
 * A direct stream between two workers of one agent: a connected pair of Unix-domain
 * sockets that the agent makes and hands one end of to each. A worker publishes to the
 * other workers with members of a channel over these links, so a message crosses from
 * its worker to another in one hop, without waking the agent.
 *
 * - Framing: records of `u32 length, u8 kind, body`; kind 1 = a serialized `BusMessage`
 *   (the same bytes for every peer), kind 2 = a serialized `PeerControl`.
 * - Writes: records queued during a turn go out as one write on `process.nextTick`,
 *   count updates (coalesced per channel) first, then the rest in order;
 *   the stream is FIFO, so a peer reads a worker's messages in the order they were
 *   published. Count updates alone wait up to REGISTRY_COALESCE_MS for others (a connect
 *   burst costs a peer one wake-up per few milliseconds, not one per session); a `sync`
 *   takes them along at once, so a count a member waits on is never late.
 * - Bound: `saturated` once MAX_PEER_UNSENT_BATCHES writes wait for the kernel (the
 *   peer stopped reading); the bus then drops what it would send to that peer.
 * - A record longer than MAX_PEER_RECORD_BYTES, of an unknown kind, or a control record
 *   that does not deserialize closes the link (the peer is not a zenconn worker of this
 *   version). Message bodies are decoded by the bus, as the agent's are.
 */
export class PeerLink {
  /** Headers and bodies queued this turn, in order. */
  private records: Uint8Array[] = [];
  private bytes = 0;
  private counts = new Map<string, number>();
  private scheduled = false;
  private countsTimer: NodeJS.Timeout | null = null;
  private unsent = 0;
  private flushes = 0;
  /** Chunks of a record not yet whole, their bytes, and the bytes that record needs (0 = header not read yet). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingNeed = 0;
  private isClosed = false;

  constructor(
    readonly key: number,
    private readonly socket: Socket,
    private readonly handler: PeerLinkHandler
  ) {
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Whether the peer has stopped reading (see MAX_PEER_UNSENT_BATCHES). */
  get saturated(): boolean {
    return this.unsent >= MAX_PEER_UNSENT_BATCHES;
  }

  /** Writes made so far (a record queued since is still unwritten). */
  get writes(): number {
    return this.flushes;
  }

  /** Writes not yet taken by the kernel. */
  get unsentBatches(): number {
    return this.unsent;
  }

  deliver(payload: Uint8Array): void {
    this.push(DELIVER, payload);
  }

  control(item: PeerControl): void {
    if (item.t === 'count') {
      this.counts.set(item.channel, item.count);
      if (!this.scheduled && this.countsTimer === null) this.countsTimer = setTimeout(this.flush, REGISTRY_COALESCE_MS);
      return;
    }
    this.push(CONTROL, serialize(item));
  }

  /** Writes what is queued now (normally done at the end of the turn). */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.countsTimer !== null) {
      clearTimeout(this.countsTimer);
      this.countsTimer = null;
    }
    if (this.isClosed || (this.records.length === 0 && this.counts.size === 0)) return;
    const parts: Uint8Array[] = [];
    let bytes = 0;
    for (const [channel, count] of this.counts) {
      const body = serialize({ t: 'count', channel, count } satisfies PeerControl);
      parts.push(header(CONTROL, body.length), body);
      bytes += HEADER_BYTES + body.length;
    }
    this.counts.clear();
    for (const r of this.records) parts.push(r);
    bytes += this.bytes;
    this.records = [];
    this.bytes = 0;
    this.flushes++;
    this.unsent++;
    this.socket.write(Buffer.concat(parts, bytes), () => {
      this.unsent--;
    });
  };

  /** Closes the link (the worker is exiting). */
  close(): void {
    this.flush();
    this.socket.end();
  }

  /** Queues a header and the body as they are: the turn's write copies each byte once. */
  private push(kind: number, body: Uint8Array): void {
    if (this.isClosed) return;
    this.records.push(header(kind, body.length), body);
    this.bytes += HEADER_BYTES + body.length;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(this.flush);
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending.length > 0) {
      // A long record comes in many chunks: they are joined once, when it is whole.
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < Math.max(this.pendingNeed, HEADER_BYTES)) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      this.pendingNeed = 0;
    }
    let at = 0;
    while (!this.isClosed && buf.length - at >= HEADER_BYTES) {
      const length = buf.readUInt32BE(at);
      if (length > MAX_PEER_RECORD_BYTES) return this.fail();
      const end = at + HEADER_BYTES + length;
      if (end > buf.length) break;
      const kind = buf[at + 4];
      const body = buf.subarray(at + HEADER_BYTES, end);
      at = end;
      if (kind === DELIVER) this.handler.deliver(body);
      else if (kind === CONTROL) {
        let item: PeerControl;
        try {
          item = deserialize(body) as PeerControl;
        } catch {
          return this.fail();
        }
        this.handler.control(item);
      } else return this.fail();
    }
    if (this.isClosed || at === buf.length) return;
    // A partial record is copied out: the chunk's memory is not kept alive by a view.
    const rest = Buffer.from(buf.subarray(at));
    this.pending = [rest];
    this.pendingBytes = rest.length;
    this.pendingNeed = rest.length >= HEADER_BYTES ? HEADER_BYTES + rest.readUInt32BE(0) : 0;
  }

  private fail(): void {
    this.socket.destroy();
    this.onClose();
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.countsTimer !== null) clearTimeout(this.countsTimer);
    this.countsTimer = null;
    this.records = [];
    this.counts.clear();
    this.pending = [];
    this.pendingBytes = 0;
    this.handler.closed();
  }
}

function header(kind: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  h[4] = kind;
  return h;
}
