/**
 * A minimal WebSocket client (RFC 6455) for the bench's subscribers and publisher.
 *
 * Why not `ws`: on this 2-core machine the clients share the CPU with the server under
 * test, and per delivery the `ws` client costs about twice what the bare `ws` server
 * does, so the clients, not the server, set the pace. This client does only what the
 * bench needs: one handshake, unmasked server frames parsed in place (payloads are
 * views into the read chunk, no copy), fragments, ping → pong, close. No compression,
 * no UTF-8 check, no limits: it talks only to the servers the bench starts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** Callbacks of one RawWebSocket, in the style of ws's events. */
export interface RawWsHandlers {
  /** The upgrade succeeded; messages may follow at once. */
  open(): void;
  /** A complete message. `payload` is only valid during the call (it views the shared read buffer). */
  message(payload: Buffer, binary: boolean): void;
  /** The handshake failed (refused, timed out, connection error); `close` follows. */
  error(message: string): void;
  /** The connection is gone; called once. `code` 1006 when there was no close frame. */
  close(code: number, reason: string): void;
}

/** Where to connect and what to send with the upgrade. */
export interface RawWsOptions {
  host: string;
  port: number;
  path?: string;
  headers?: Record<string, string>;
  /** Fail the handshake after this long (default 15 s). */
  timeoutMs?: number;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/**
 * The read buffer of every connection in the process (net's `onread`): the kernel's
 * bytes land here and are parsed in place during the read callback, with no Buffer
 * allocated and no stream event per read; what is left of a partial frame is copied out.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** One client connection: connects and upgrades on construction, reports through its handlers. */
export class RawWebSocket {
  private readonly socket: Socket;
  private open = false;
  private pending: Buffer | null = null;
  private fragments: Buffer[] = [];
  private fragmentBinary = false;
  private closeCode = 1006;
  private closeReason = '';
  private closeSent = false;
  private closed = false;
  /** Whether this turn's frames are being gathered (see writeFrame). */
  private corked = false;
  /** Reads before the upgrade completed: the handshake's (set in the constructor). */
  private onHandshakeData: (chunk: Buffer) => void = () => {};

  constructor(
    options: RawWsOptions,
    private readonly handlers: RawWsHandlers
  ) {
    const timeoutMs = options.timeoutMs ?? 15_000;
    const key = randomBytes(16).toString('base64');
    const expectedAccept = createHash('sha1').update(key + GUID).digest('base64');
    const socket = connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          this.onRead(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        }
      }
    });
    this.socket = socket;
    let head: Buffer = Buffer.alloc(0);
    let failed = false;
    const fail = (message: string): void => {
      if (this.open || this.closed || failed) return;
      failed = true;
      clearTimeout(timer);
      this.handlers.error(message);
      socket.destroy();
    };
    const timer = setTimeout(() => fail(`handshake timed out after ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => {
      const lines = [
        `GET ${options.path ?? '/'} HTTP/1.1`,
        `Host: ${options.host}:${options.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
        ...Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}`)
      ];
      socket.write(lines.join('\r\n') + '\r\n\r\n');
    });
    this.onHandshakeData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16384) fail('handshake response head too long');
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      if (status !== '101') {
        const body = head.subarray(end + 4, end + 204).toString().trim();
        fail(`upgrade refused: HTTP ${status ?? '?'}${body === '' ? '' : ` ${body}`}`);
        return;
      }
      if (/\r\nsec-websocket-accept:\s*(\S+)/i.exec(text)?.[1] !== expectedAccept) {
        fail('upgrade response has a wrong Sec-WebSocket-Accept');
        return;
      }
      clearTimeout(timer);
      this.open = true;
      this.handlers.open();
      // The server's first frames may have come in the same read as the response head.
      if (head.length > end + 4) this.onData(head.subarray(end + 4));
    };
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      if (!this.open) fail('connection closed during the handshake');
      if (this.closed) return;
      this.closed = true;
      this.handlers.close(this.closeCode, this.closeReason);
    });
  }

  /** Send a text (string) or binary (Buffer) message. A no-op before open and once closing. */
  send(data: string | Buffer): void {
    if (!this.open || this.closeSent || this.closed) return;
    const binary = typeof data !== 'string';
    this.writeFrame(binary ? OP_BINARY : OP_TEXT, binary ? data : Buffer.from(data));
  }

  /** Start the close handshake; the socket is destroyed if the server does not finish it in 1 s. */
  close(code = 1000): void {
    if (this.closed) return;
    if (!this.open) {
      this.socket.destroy();
      return;
    }
    if (!this.closeSent) {
      const body = Buffer.alloc(2);
      body.writeUInt16BE(code);
      this.writeFrame(OP_CLOSE, body);
      this.closeSent = true;
    }
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Drop the connection at once. */
  terminate(): void {
    this.socket.destroy();
  }
  private writeFrame(opcode: number, payload: Buffer): void {
    const length = payload.length;
    const extra = length < 126 ? 0 : length < 65536 ? 2 : 8;
    const frame = Buffer.allocUnsafe(2 + extra + 4 + length);
    frame[0] = 0x80 | opcode;
    if (extra === 0) frame[1] = 0x80 | length;
    else if (extra === 2) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    const maskAt = 2 + extra;
    randomBytes(4).copy(frame, maskAt);
    const dataAt = maskAt + 4;
    for (let i = 0; i < length; i++) frame[dataAt + i] = payload[i]! ^ frame[maskAt + (i & 3)]!;
    // Frames sent in one turn (a publisher answering a read full of acks) leave in one
    // write, as a client library that batches its commands would send them.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(frame);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /** One read (a view of READ_BUFFER, valid only during this call). */
  private onRead(chunk: Buffer): void {
    if (this.open) this.onData(chunk);
    else this.onHandshakeData(chunk);
  }

  private onData(chunk: Buffer): void {
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    let offset = 0;
    for (;;) {
      const available = buf.length - offset;
      if (available < 2) break;
      const b0 = buf[offset]!;
      const b1 = buf[offset + 1]!;
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (available < 4) break;
        length = buf.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (available < 10) break;
        length = buf.readUInt32BE(offset + 2) * 2 ** 32 + buf.readUInt32BE(offset + 6);
        header = 10;
      }
      if ((b1 & 0x80) !== 0) {
        // Servers never mask: a masked frame means we are not talking to a WebSocket server.
        this.socket.destroy();
        return;
      }
      if (available < header + length) break;
      const payload = buf.subarray(offset + header, offset + header + length);
      offset += header + length;
      this.onFrame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
      if (this.closed) return;
    }
    // The read buffer is reused by the next read: keep a copy of the partial frame.
    if (offset < buf.length) this.pending = Buffer.from(buf.subarray(offset));
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case OP_TEXT:
      case OP_BINARY:
        if (fin) this.handlers.message(payload, opcode === OP_BINARY);
        else {
          this.fragmentBinary = opcode === OP_BINARY;
          this.fragments = [Buffer.from(payload)];
        }
        return;
      case OP_CONTINUATION:
        this.fragments.push(Buffer.from(payload));
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = [];
          this.handlers.message(whole, this.fragmentBinary);
        }
        return;
      case OP_CLOSE:
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.closeReason = payload.length > 2 ? payload.subarray(2).toString() : '';
        if (!this.closeSent) {
          this.writeFrame(OP_CLOSE, payload.subarray(0, 2));
          this.closeSent = true;
        }
        this.socket.end();
        return;
      case OP_PING:
        if (!this.closeSent) this.writeFrame(OP_PONG, Buffer.from(payload));
        return;
      default:
        // Pong or reserved opcodes: nothing to do.
        return;
    }
  }
}
