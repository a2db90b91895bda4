/**
 * Flood limits of one process, checked before any work is done for a client:
 * - open connections (`--max-connections`): a connection over the cap gets 503 to its
 *   first request or upgrade, then is closed;
 * - upgrades per client address (`--max-connections-per-ip`): WebSocket sockets open or
 *   in their handshake, 429 beyond it;
 * - handshake rate per client address (`--handshake-rate-per-ip`, `--handshake-burst-per-ip`):
 *   a token bucket per address, 429 with Retry-After when empty.
 * Requests whose headers or body do not arrive in time (`--http-headers-timeout-ms`,
 * `--http-request-timeout-ms`, enforced by Node's server) are counted here too.
 * The address is the one behind the trusted proxies (client-address.ts). Every refusal
 * is counted by reason (`refused`) and logged at most once per LOG_EVERY_MS per reason.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';

/** Why a connection or an upgrade was refused. */
export type AdmissionRefusal = 'maxConnections' | 'maxConnectionsPerIp' | 'handshakeRate' | 'requestTimeout';

/** An answer to give instead of serving: status, JSON body, headers. */
export interface AdmissionAnswer {
  status: 429 | 503;
  body: string;
  headers: Record<string, string>;
}

/** Options of {@link Admission}; 0 turns a limit off. */
export interface AdmissionOptions {
  /** Open connections of this process. */
  maxConnections: number;
  /** WebSocket sockets (open or in their handshake) per client address. */
  maxConnectionsPerIp: number;
  /** Handshakes per second per client address, sustained. */
  handshakeRatePerIp: number;
  /** Handshakes per client address at once (the bucket's size). */
  handshakeBurstPerIp: number;
  logger: Logger;
  /** Most addresses with a bucket; full buckets go first, then the oldest. Default 100000. */
  maxTrackedAddresses?: number;
  /** Milliseconds clock (tests). Default `performance.now`. */
  now?: () => number;
}

const LOG_EVERY_MS = 10_000;

/**
 * What a counted socket carries for its one shared close listener (`onCountedClose`):
 * no closure per socket, which held ~200 bytes for a session's whole life (#15).
 */
const ADMISSION = Symbol('zenconn.admission');
/** Counted as open (connectionOpened). */
const OPEN = Symbol('zenconn.admission.open');
/** Counted against this client address (admitUpgrade). */
const UPGRADE_ADDR = Symbol('zenconn.admission.addr');
type Counted = Duplex & { [ADMISSION]?: Admission; [OPEN]?: boolean; [UPGRADE_ADDR]?: string };

function onCountedClose(this: Counted): void {
  this[ADMISSION]!.released(this[OPEN] === true, this[UPGRADE_ADDR]);
}

interface Bucket {
  tokens: number;
  at: number;
}

/** The limits above, for one process. */
export class Admission {
  /** Refusals since start, by reason. */
  readonly refused: Record<AdmissionRefusal, number> = { maxConnections: 0, maxConnectionsPerIp: 0, handshakeRate: 0, requestTimeout: 0 };
  private open = 0;
  private readonly over = new WeakSet<Duplex>();
  private readonly upgrades = new Map<string, number>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxTracked: number;
  private readonly lastLogged: Record<AdmissionRefusal, number> = { maxConnections: -Infinity, maxConnectionsPerIp: -Infinity, handshakeRate: -Infinity, requestTimeout: -Infinity };
  private readonly unlogged: Record<AdmissionRefusal, number> = { maxConnections: 0, maxConnectionsPerIp: 0, handshakeRate: 0, requestTimeout: 0 };

  constructor(private readonly o: AdmissionOptions) {
    this.now = o.now ?? (() => performance.now());
    this.maxTracked = o.maxTrackedAddresses ?? 100_000;
  }

  /** Open connections now. */
  get connections(): number {
    return this.open;
  }

  /** A connection arrived (the server's 'connection'): counted until it closes; over the cap it is marked. */
  connectionOpened(socket: Socket): void {
    this.open++;
    this.watch(socket)[OPEN] = true;
    if (this.o.maxConnections > 0 && this.open > this.o.maxConnections) this.over.add(socket);
  }

  /** The 503 for a request or upgrade on a connection over the cap (counted), or null. */
  overCap(socket: Duplex): AdmissionAnswer | null {
    if (!this.over.has(socket)) return null;
    this.count('maxConnections');
    return { status: 503, body: '{"error":"too many connections"}', headers: { 'Retry-After': '1' } };
  }

  /**
   * An upgrade from `addr` on `socket`: null when admitted (the socket then counts against
   * the address until it closes), else the answer to refuse it with.
   */
  admitUpgrade(socket: Duplex, addr: string): AdmissionAnswer | null {
    const cap = this.overCap(socket);
    if (cap !== null) return cap;
    if (this.o.handshakeRatePerIp > 0 && !this.takeToken(addr)) {
      this.count('handshakeRate');
      return { status: 429, body: '{"error":"too many handshakes from this address"}', headers: { 'Retry-After': '1' } };
    }
    const n = this.upgrades.get(addr) ?? 0;
    if (this.o.maxConnectionsPerIp > 0 && n >= this.o.maxConnectionsPerIp) {
      this.count('maxConnectionsPerIp');
      return { status: 429, body: '{"error":"too many connections from this address"}', headers: { 'Retry-After': '1' } };
    }
    this.upgrades.set(addr, n + 1);
    this.watch(socket)[UPGRADE_ADDR] = addr;
    return null;
  }

  /** Gives `socket` the shared close listener once. */
  private watch(socket: Duplex): Counted {
    const counted = socket as Counted;
    if (counted[ADMISSION] === undefined) {
      counted[ADMISSION] = this;
      socket.on('close', onCountedClose);
    }
    return counted;
  }

  /** A counted socket closed: it leaves the open count and its address's count. */
  released(open: boolean, addr: string | undefined): void {
    if (open) this.open--;
    if (addr === undefined) return;
    const left = (this.upgrades.get(addr) ?? 1) - 1;
    if (left <= 0) this.upgrades.delete(addr);
    else this.upgrades.set(addr, left);
  }

  /** A request's headers or body did not arrive in time (answered 408 by the server): counted. */
  timedOut(): void {
    this.count('requestTimeout');
  }

  /** Addresses holding a handshake bucket now (bounded by maxTrackedAddresses). */
  get trackedAddresses(): number {
    return this.buckets.size;
  }

  private takeToken(addr: string): boolean {
    const now = this.now();
    const rate = this.o.handshakeRatePerIp / 1000;
    const burst = this.o.handshakeBurstPerIp;
    let b = this.buckets.get(addr);
    if (b === undefined) {
      if (this.buckets.size >= this.maxTracked) this.evict(now);
      b = { tokens: burst, at: now };
      this.buckets.set(addr, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + (now - b.at) * rate);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Makes room: a bucket that has refilled is the same as none; failing that, the oldest goes. */
  private evict(now: number): void {
    const rate = this.o.handshakeRatePerIp / 1000;
    for (const [addr, b] of this.buckets) {
      if (b.tokens + (now - b.at) * rate >= this.o.handshakeBurstPerIp) this.buckets.delete(addr);
    }
    while (this.buckets.size >= this.maxTracked) this.buckets.delete(this.buckets.keys().next().value!);
  }

  private count(reason: AdmissionRefusal): void {
    this.refused[reason]++;
    this.unlogged[reason]++;
    const now = this.now();
    if (now - this.lastLogged[reason] < LOG_EVERY_MS) return;
    this.o.logger.warn({ reason, refused: this.unlogged[reason], total: this.refused[reason] }, 'connections refused by a flood limit');
    this.lastLogged[reason] = now;
    this.unlogged[reason] = 0;
  }
}
