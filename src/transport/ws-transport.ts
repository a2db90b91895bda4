import { STATUS_CODES, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import { WebSocketServer, WebSocket } from 'ws';
import { destroyOnError, type Connection, type ConnectionHandler, type PreparedFrame, type Transport, type TransportOptions } from './transport.js';
import { FrameRun } from './frame-run.js';

/** A frame already laid out on the wire (header + payload), shared by every recipient. */
class WsFrame implements PreparedFrame {
  /** The frame as the start of a turn's run (frame-run.ts). */
  readonly run: FrameRun;

  constructor(
    bytes: Buffer,
    readonly length: number
  ) {
    this.run = FrameRun.of(bytes);
  }
}

/** ws's frame builder (exported by ws at runtime, not declared by @types/ws). */
const Sender = (wsModule as unknown as {
  Sender: { frame(data: Buffer, options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[] };
}).Sender;

const NOOP_HANDLER: ConnectionHandler = { onMessage() {}, onActivity() {}, onClose() {} };

/** Where a ws socket keeps its WsConnection, for the shared listeners below. */
const CONNECTION = Symbol('zenconn.connection');
type OwnedWebSocket = WebSocket & { [CONNECTION]: WsConnection };

function onWsMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  (this as OwnedWebSocket)[CONNECTION].received(data, isBinary);
}

function onWsActivity(this: WebSocket): void {
  (this as OwnedWebSocket)[CONNECTION].active();
}

function onWsError(): void {}

function onWsClose(this: WebSocket, code: number): void {
  (this as OwnedWebSocket)[CONNECTION].ended(code);
}

/** A corked connection's run before its first frame. */
const CORKED = FrameRun.of(Buffer.alloc(0));

/** A `ws` socket behind the `Connection` interface. */
class WsConnection implements Connection {
  readonly remoteAddress: string;
  private readonly socket: Socket;
  private handler: ConnectionHandler = NOOP_HANDLER;
  private closed = false;
  /** Corked: the frames sent since (CORKED: none yet); null: not corked, frames go straight out. */
  private run: FrameRun | null = null;

  constructor(private readonly ws: WebSocket) {
    // ws keeps the net.Socket private; corking it and writing pre-framed bytes to it is
    // what lets one encoded frame go to every recipient in one syscall per turn.
    this.socket = (ws as unknown as { _socket: Socket })._socket;
    this.remoteAddress = this.socket.remoteAddress ?? '';
    // Shared listeners that find this object on the socket, not five closures per session (#15).
    (ws as OwnedWebSocket)[CONNECTION] = this;
    ws.on('message', onWsMessage);
    ws.on('pong', onWsActivity);
    ws.on('ping', onWsActivity);
    // 'close' follows every 'error'; the code (1009, 1002…) is reported there.
    ws.on('error', onWsError);
    ws.on('close', onWsClose);
  }

  /** ws read a message (see onWsMessage). */
  received(data: Buffer, isBinary: boolean): void {
    this.handler.onActivity();
    this.handler.onMessage(data, isBinary);
  }

  /** A pong or ping came in. */
  active(): void {
    this.handler.onActivity();
  }

  /** ws closed (see onWsClose). */
  ended(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.handler.onClose(code);
  }

  get bufferedAmount(): number {
    return this.socket.writableLength + (this.run === null ? 0 : this.run.length);
  }

  setHandler(handler: ConnectionHandler): void {
    this.handler = handler;
  }

  send(frame: PreparedFrame): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const run = (frame as WsFrame).run;
    // With permessage-deflate off, ws's Sender writes synchronously, so whole frames
    // written here never interleave with its pings or its close frame.
    if (this.run === null) this.socket.write(run.bytes());
    else this.run = this.run === CORKED ? run : this.run.then(run);
  }

  /** Until `uncork`, frames are kept as a run shared with the turn's other recipients (frame-run.ts). */
  cork(): void {
    this.run ??= CORKED;
  }

  /** Writes the run, one buffer; not after ws began closing (a close frame went out already). */
  uncork(): void {
    const run = this.run;
    this.run = null;
    if (run === null || run === CORKED || this.ws.readyState !== WebSocket.OPEN) return;
    this.socket.write(run.bytes());
  }

  ping(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }

  close(code: number, reason?: string): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** The request's chosen subprotocol, set by `decide` and read by ws's handleProtocols. */
const chosenProtocol = new WeakMap<IncomingMessage, string>();

/** The `ws` engine (permessage-deflate off, no client tracking). */
export class WsTransport implements Transport {
  private wss: WebSocketServer | null = null;
  private server: HttpServer | HttpsServer | null = null;
  private onUpgrade: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | null = null;

  prepare(payload: Buffer, binary: boolean): PreparedFrame {
    const parts = Sender.frame(payload, { fin: true, rsv1: false, opcode: binary ? 2 : 1, mask: false, readOnly: true });
    return new WsFrame(parts.length === 1 ? parts[0]! : Buffer.concat(parts), payload.length);
  }

  attach<T>(server: HttpServer | HttpsServer, options: TransportOptions<T>): void {
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (_protocols, req) => chosenProtocol.get(req) ?? false
    });
    this.wss = wss;
    this.server = server;
    const refuse = (req: IncomingMessage, socket: Duplex, status: number, body: string, headers: Record<string, string> = {}): void => {
      options.onRefused?.(req, status, body);
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, 'Connection: close', 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`];
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      socket.end(lines.join('\r\n') + '\r\n\r\n' + body);
    };
    this.onUpgrade = (req, socket, head) => {
      // One shared function, not a closure here: a closure would hold this scope, and with it `req`
      // (the upgrade request and its headers), for as long as the socket lives (#15, memory per session).
      socket.on('error', destroyOnError);
      const q = req.url?.indexOf('?') ?? -1;
      const path = q === -1 ? req.url : req.url!.slice(0, q);
      if (path !== options.path) return refuse(req, socket, 404, '{"error":"not found"}');
      Promise.resolve()
        .then(() => options.decide(req))
        .then(
          (decision) => {
            if (!decision.accept) return refuse(req, socket, decision.status, decision.body, decision.headers);
            if (socket.destroyed) return;
            if (decision.protocol) chosenProtocol.set(req, decision.protocol);
            wss.handleUpgrade(req, socket, head, (ws) => options.onConnection(new WsConnection(ws), req, decision.context));
          },
          () => refuse(req, socket, 500, '{"error":"internal error"}')
        );
    };
    server.on('upgrade', this.onUpgrade);
  }

  detach(): void {
    if (this.server && this.onUpgrade) this.server.off('upgrade', this.onUpgrade);
    this.wss?.close();
    this.wss = null;
    this.onUpgrade = null;
  }
}
