/**
 * The client side of each protocol the bench speaks: connect a subscriber, connect a
 * publisher. The load generator and the client processes use only these two functions,
 * so every server row is driven by the same code whatever its wire format.
 *
 * - `json`: zenconn's JSON text frames (the bare `ws` reference server speaks them too).
 * - `binary`: zenconn's MessagePack arrays, chosen with the `X-Bin-Protocol: 1` header.
 * - `socketio`: Socket.IO 4 over its websocket transport; a subscriber emits `join`,
 *   the publisher emits `broadcast` with an ack that carries the recipient count.
 *   Spoken by a minimal client (Engine.IO 4 / Socket.IO 5 packets over raw-ws-client),
 *   for the same reason the JSON rows use raw-ws-client: the official client costs more
 *   CPU per event than the server it measures, and they share two cores.
 * - `socketio-official`: the same, through the official `socket.io-client`; a row can
 *   use it to check that the minimal client changes nothing but client CPU.
 */
import { pack, unpack } from 'msgpackr';
import { io, type Socket } from 'socket.io-client';
import type { Payload } from './payload.js';
import { RawWebSocket, type RawWsHandlers } from './raw-ws-client.js';

/** A wire protocol the bench can drive. */
export type Protocol = 'json' | 'binary' | 'socketio' | 'socketio-official';

/** Where a server listens (always loopback). */
export interface Target {
  host: string;
  port: number;
}

/** What a subscriber hands on for each event: the payload fields the bench measures. */
export interface Delivery {
  t: number;
  s: number;
  m: number;
}

/** How to open one subscriber and where its events go. */
export interface SubscriberOptions {
  target: Target;
  protocol: Protocol;
  channel: string;
  /** false: ready once `accepted`, without subscribing (json/binary only; to measure the session alone). Default true. */
  subscribe?: boolean;
  /** Extra upgrade headers (json/binary only). */
  headers?: Record<string, string>;
  /** Give up on the handshake + subscribe after this long (default 15 s). */
  timeoutMs?: number;
  onEvent(delivery: Delivery): void;
  /** The connection closed after it was ready. `code` is the close code (json/binary). */
  onClose(code: number, reason: string): void;
  /** A frame that is not an event arrived after subscribing (an error frame, say). */
  onUnexpected(frame: string): void;
}

/** A ready, subscribed client. */
export interface Subscriber {
  /** Close handshake (1000). */
  close(): void;
  /** Drop the TCP connection without a close frame (a client that vanished). */
  terminate(): void;
}

/** How to open the publisher (one per run). */
export interface PublisherOptions {
  target: Target;
  protocol: Protocol;
  channel: string;
  /** Bearer token sent as `Authorization` (json/binary) or Socket.IO `auth.token`. */
  token?: string;
  timeoutMs?: number;
  /** The publisher got a frame it cannot match to a broadcast, or its connection closed. */
  onFailure(message: string): void;
}

/**
 * A connected publisher. `publish` calls `onAck` with the recipient count the server
 * reported; acks are matched in order (the servers answer broadcasts in order).
 * `channel` defaults to the one the publisher was opened with.
 */
export interface Publisher {
  publish(data: Payload, onAck: (count: number) => void, channel?: string): void;
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const BIN_ACCEPTED = 0;
const BIN_SUBSCRIBE = 1;
const BIN_SUBSCRIBED = 2;
const BIN_BROADCAST = 6;
const BIN_RECEIVED = 7;
const BIN_EVENT = 8;
const JSON_EVENT_PREFIX = '{"type":"event"';

/** Connect, wait for `accepted`, subscribe, wait for `subscribed`. */
export function connectSubscriber(options: SubscriberOptions): Promise<Subscriber> {
  switch (options.protocol) {
    case 'socketio':
      return sioSubscriber(options);
    case 'socketio-official':
      return socketIoSubscriber(options);
    default:
      return wsSubscriber(options);
  }
}

/** Connect and wait for `accepted` (Socket.IO: for `connect`). */
export function connectPublisher(options: PublisherOptions): Promise<Publisher> {
  switch (options.protocol) {
    case 'socketio':
      return sioPublisher(options);
    case 'socketio-official':
      return socketIoPublisher(options);
    default:
      return wsPublisher(options);
  }
}

function openWs(
  target: Target,
  protocol: Protocol,
  headers: Record<string, string>,
  timeoutMs: number,
  handlers: RawWsHandlers
): RawWebSocket {
  const all = protocol === 'binary' ? { ...headers, 'X-Bin-Protocol': '1' } : headers;
  return new RawWebSocket({ host: target.host, port: target.port, path: '/', headers: all, timeoutMs }, handlers);
}

/** A frame decoded far enough to route it: `[kind, channel, ...]` for both encodings. */
interface Decoded {
  kind: 'accepted' | 'subscribed' | 'received' | 'event' | 'other';
  channel?: string;
  count?: number;
  data?: unknown;
}

function decode(protocol: Protocol, raw: Buffer): Decoded {
  if (protocol === 'binary') {
    const frame = unpack(raw) as unknown[];
    if (!Array.isArray(frame)) return { kind: 'other' };
    switch (frame[0]) {
      case BIN_ACCEPTED:
        return { kind: 'accepted' };
      case BIN_SUBSCRIBED:
        return { kind: 'subscribed', channel: frame[1] as string };
      case BIN_RECEIVED:
        return { kind: 'received', channel: frame[1] as string, count: frame[2] as number };
      case BIN_EVENT:
        return { kind: 'event', channel: frame[1] as string, data: frame[2] };
      default:
        return { kind: 'other' };
    }
  }
  const frame = JSON.parse(raw.toString()) as { type?: string; channel?: string; count?: number; data?: unknown };
  switch (frame.type) {
    case 'accepted':
    case 'subscribed':
    case 'received':
    case 'event':
      return { kind: frame.type, channel: frame.channel, count: frame.count, data: frame.data } as Decoded;
    default:
      return { kind: 'other' };
  }
}

/**
 * The hot path of every subscriber: pull t, s and m out of an event without building
 * the whole object (JSON text and MessagePack alike). Falls back to a full decode when the frame is not laid out as
 * expected (another key order, say), so it is never wrong, only sometimes slower.
 */
export function fastDelivery(protocol: Protocol, raw: Buffer): Delivery | undefined {
  if (protocol === 'json' && startsWith(raw, JSON_EVENT_PREFIX_BYTES)) {
    const delivery = scanPayloadBytes(raw, JSON_EVENT_PREFIX_BYTES.length);
    if (delivery !== undefined) return delivery;
  }
  if (protocol === 'binary') {
    const delivery = scanBinaryPayload(raw);
    if (delivery !== undefined) return delivery;
  }
  const frame = decode(protocol, raw);
  if (frame.kind !== 'event') return undefined;
  return asDelivery(frame.data);
}

// MessagePack bytes of the payload keys: fixstr of length 1 + the letter.
const KEY_T = Buffer.from([0xa1, 0x74]);
const KEY_S = Buffer.from([0xa1, 0x73]);
const KEY_M = Buffer.from([0xa1, 0x6d]);

/**
 * t, s and m of an event `[8, channel, {t, s, m, p}, from, id]` (or with its position,
 * `[…, offset, epoch]`) in MessagePack, read in place. Undefined (so the caller unpacks
 * it all) unless the frame is a 5- or 7-array of kind 8 and each value has a form read
 * here: t a float64, s an unsigned int, m a fixint.
 */
function scanBinaryPayload(raw: Buffer): Delivery | undefined {
  if ((raw[0] !== 0x95 && raw[0] !== 0x97) || raw[1] !== BIN_EVENT) return undefined;
  const ti = raw.indexOf(KEY_T, 2);
  if (ti < 0 || raw[ti + 2] !== 0xcb) return undefined;
  const si = raw.indexOf(KEY_S, ti + 11);
  if (si < 0) return undefined;
  const s = readUint(raw, si + 2);
  if (s === undefined) return undefined;
  const mi = raw.indexOf(KEY_M, si + 3);
  const m = mi < 0 ? -1 : raw[mi + 2]!;
  if (m !== 0 && m !== 1) return undefined;
  return { t: raw.readDoubleBE(ti + 3), s, m };
}

function readUint(raw: Buffer, at: number): number | undefined {
  const tag = raw[at]!;
  if (tag <= 0x7f) return tag;
  switch (tag) {
    case 0xcc:
      return raw.readUInt8(at + 1);
    case 0xcd:
      return raw.readUInt16BE(at + 1);
    case 0xce:
      return raw.readUInt32BE(at + 1);
    default:
      return undefined;
  }
}

const JSON_EVENT_PREFIX_BYTES = Buffer.from(JSON_EVENT_PREFIX);

function startsWith(raw: Buffer, prefix: Buffer): boolean {
  if (raw.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (raw[i] !== prefix[i]) return false;
  return true;
}

const QUOTE = 0x22;
const COLON = 0x3a;
const COMMA = 0x2c;
const DOT = 0x2e;
const ZERO = 0x30;

/** Index just past `"<key>":` (a one-letter key) at or after `from`, or -1. */
function afterKey(raw: Buffer, key: number, from: number): number {
  for (let i = from; i + 3 < raw.length; i++) {
    if (raw[i] === QUOTE && raw[i + 1] === key && raw[i + 2] === QUOTE && raw[i + 3] === COLON) return i + 4;
  }
  return -1;
}

/**
 * t, s and m of a payload inside JSON text, read from the bytes in place (no string is
 * made): `"t":<digits>[.<digits>],"s":<digits>,"m":<0|1>`, as the bench's payload lays
 * them out. Undefined (so the caller parses the whole frame) for anything else.
 */
function scanPayloadBytes(raw: Buffer, from: number): Delivery | undefined {
  let i = afterKey(raw, 0x74, from);
  if (i < 0) return undefined;
  let t = 0;
  let digits = 0;
  for (; i < raw.length && raw[i]! >= ZERO && raw[i]! <= ZERO + 9; i++, digits++) t = t * 10 + (raw[i]! - ZERO);
  if (digits === 0) return undefined;
  if (raw[i] === DOT) {
    let scale = 1;
    for (i++; i < raw.length && raw[i]! >= ZERO && raw[i]! <= ZERO + 9; i++) {
      scale /= 10;
      t += (raw[i]! - ZERO) * scale;
    }
  }
  if (raw[i] !== COMMA || raw[i + 1] !== QUOTE || raw[i + 2] !== 0x73 || raw[i + 3] !== QUOTE || raw[i + 4] !== COLON) return undefined;
  let s = 0;
  digits = 0;
  for (i += 5; i < raw.length && raw[i]! >= ZERO && raw[i]! <= ZERO + 9; i++, digits++) s = s * 10 + (raw[i]! - ZERO);
  if (digits === 0) return undefined;
  if (raw[i] !== COMMA || raw[i + 1] !== QUOTE || raw[i + 2] !== 0x6d || raw[i + 3] !== QUOTE || raw[i + 4] !== COLON) return undefined;
  const m = raw[i + 5]! - ZERO;
  if (m !== 0 && m !== 1) return undefined;
  return { t, s, m };
}

function asDelivery(data: unknown): Delivery | undefined {
  const d = data as Partial<Delivery> | null;
  if (d === null || typeof d !== 'object' || typeof d.t !== 'number' || typeof d.s !== 'number') return undefined;
  return { t: d.t, s: d.s, m: d.m === 1 ? 1 : 0 };
}

function encodeSubscribe(protocol: Protocol, channel: string): Buffer | string {
  return protocol === 'binary' ? pack([BIN_SUBSCRIBE, channel]) : JSON.stringify({ type: 'subscribe', channel });
}

function encodeBroadcast(protocol: Protocol, channel: string, data: unknown): Buffer | string {
  return protocol === 'binary'
    ? pack([BIN_BROADCAST, channel, data])
    : JSON.stringify({ type: 'broadcast', channel, data });
}

function preview(raw: Buffer, protocol: Protocol): string {
  if (protocol === 'binary') {
    try {
      return JSON.stringify(unpack(raw)).slice(0, 200);
    } catch {
      return `<${raw.length} undecodable bytes>`;
    }
  }
  return raw.toString().slice(0, 200);
}

function wsSubscriber(options: SubscriberOptions): Promise<Subscriber> {
  const { protocol, channel } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let state: 'accepting' | 'subscribing' | 'ready' | 'failed' = 'accepting';
    const fail = (message: string): void => {
      if (state === 'ready' || state === 'failed') return;
      state = 'failed';
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(message));
    };
    const timer = setTimeout(() => fail(`subscriber not ready after ${timeoutMs} ms (${state})`), timeoutMs);
    const ws = openWs(options.target, protocol, options.headers ?? {}, timeoutMs, {
      open() {},
      error: (message) => fail(`subscriber: ${message}`),
      close(code, reason) {
        if (state === 'ready') options.onClose(code, reason);
        else fail(`subscriber closed before ready: ${code} ${reason}`);
      },
      message(raw) {
        if (state === 'ready') {
          const delivery = fastDelivery(protocol, raw);
          if (delivery !== undefined) options.onEvent(delivery);
          else options.onUnexpected(preview(raw, protocol));
          return;
        }
        let frame: Decoded;
        try {
          frame = decode(protocol, raw);
        } catch {
          fail(`subscriber got an undecodable frame: ${preview(raw, protocol)}`);
          return;
        }
        if (state === 'accepting' && frame.kind === 'accepted' && options.subscribe === false) {
          state = 'ready';
          clearTimeout(timer);
          resolve({ close: () => ws.close(1000), terminate: () => ws.terminate() });
        } else if (state === 'accepting' && frame.kind === 'accepted') {
          state = 'subscribing';
          ws.send(encodeSubscribe(protocol, channel));
        } else if (state === 'subscribing' && frame.kind === 'subscribed' && frame.channel === channel) {
          state = 'ready';
          clearTimeout(timer);
          resolve({ close: () => ws.close(1000), terminate: () => ws.terminate() });
        } else {
          fail(`subscriber expected ${state === 'accepting' ? 'accepted' : 'subscribed'}, got ${preview(raw, protocol)}`);
        }
      }
    });
  });
}

function wsPublisher(options: PublisherOptions): Promise<Publisher> {
  const { protocol, channel } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const headers: Record<string, string> = options.token === undefined ? {} : { Authorization: `Bearer ${options.token}` };
  return new Promise((resolve, reject) => {
    const acks: Array<(count: number) => void> = [];
    let ackHead = 0;
    let ready = false;
    let settled = false;
    let closing = false;
    const refuse = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(message));
    };
    const timer = setTimeout(() => refuse(`publisher not accepted after ${timeoutMs} ms`), timeoutMs);
    const ws = openWs(options.target, protocol, headers, timeoutMs, {
      open() {},
      error: (message) => refuse(`publisher: ${message}`),
      close(code, reason) {
        if (!ready) refuse(`publisher closed before accepted: ${code} ${reason}`);
        else if (!closing) options.onFailure(`publisher connection closed: ${code} ${reason}`);
      },
      message(raw) {
        let frame: Decoded;
        try {
          frame = decode(protocol, raw);
        } catch {
          if (ready) options.onFailure(`publisher got an undecodable frame: ${preview(raw, protocol)}`);
          else refuse(`publisher got an undecodable frame: ${preview(raw, protocol)}`);
          return;
        }
        if (!ready) {
          if (frame.kind !== 'accepted') {
            refuse(`publisher expected accepted, got ${preview(raw, protocol)}`);
            return;
          }
          ready = true;
          settled = true;
          clearTimeout(timer);
          resolve({
            publish(data, onAck, to = channel) {
              acks.push(onAck);
              ws.send(encodeBroadcast(protocol, to, data));
            },
            close() {
              closing = true;
              ws.close(1000);
            }
          });
          return;
        }
        if (frame.kind === 'received' && ackHead < acks.length) {
          const onAck = acks[ackHead]!;
          acks[ackHead++] = noop;
          if (ackHead > 1024 && ackHead * 2 > acks.length) {
            acks.splice(0, ackHead);
            ackHead = 0;
          }
          onAck(frame.count ?? 0);
        } else if (frame.kind !== 'event') {
          // The publisher is not subscribed, so an event would be odd but harmless.
          options.onFailure(`publisher got an unexpected frame: ${preview(raw, protocol)}`);
        }
      }
    });
  });
}

function noop(): void {}

/*
 * The minimal Socket.IO client. Over a websocket-only Engine.IO 4 connection each text
 * frame is one Engine.IO packet: `0{…}` open, `2` ping (answer `3`), `1` close, `4…`
 * a message, whose body is a Socket.IO packet: `0` connect, `1` disconnect,
 * `2[ackId]["event",…]` an event, `3<ackId>[…]` an ack, `4{…}` a connect error.
 */
const SIO_PATH = '/socket.io/?EIO=4&transport=websocket';
const SIO_EVENT_PREFIX = '42["event",';
const SIO_EVENT_PREFIX_BYTES = Buffer.from(SIO_EVENT_PREFIX);

function openSio(target: Target, timeoutMs: number, handlers: RawWsHandlers): RawWebSocket {
  return new RawWebSocket({ host: target.host, port: target.port, path: SIO_PATH, timeoutMs }, handlers);
}

function sioSubscriber(options: SubscriberOptions): Promise<Subscriber> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let state: 'opening' | 'connecting' | 'joining' | 'ready' | 'failed' = 'opening';
    const fail = (message: string): void => {
      if (state === 'ready' || state === 'failed') return;
      state = 'failed';
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(message));
    };
    const timer = setTimeout(() => fail(`socket.io subscriber not ready after ${timeoutMs} ms (${state})`), timeoutMs);
    const ws = openSio(options.target, timeoutMs, {
      open() {},
      error: (message) => fail(`socket.io subscriber: ${message}`),
      close(code, reason) {
        if (state === 'ready') options.onClose(code, reason);
        else fail(`socket.io subscriber closed before ready: ${code} ${reason}`);
      },
      message(raw) {
        if (state === 'ready' && startsWith(raw, SIO_EVENT_PREFIX_BYTES)) {
          const fast = scanPayloadBytes(raw, SIO_EVENT_PREFIX_BYTES.length);
          if (fast !== undefined) {
            options.onEvent(fast);
            return;
          }
        }
        const text = raw.toString();
        if (state === 'ready') {
          if (text.startsWith(SIO_EVENT_PREFIX)) {
            const delivery = asDelivery((JSON.parse(text.slice(2)) as unknown[])[1]);
            if (delivery !== undefined) {
              options.onEvent(delivery);
              return;
            }
          } else if (text === '2') {
            ws.send('3');
            return;
          }
          options.onUnexpected(text.slice(0, 200));
          return;
        }
        if (text === '2') ws.send('3');
        else if (state === 'opening' && text.startsWith('0')) {
          state = 'connecting';
          ws.send('40');
        } else if (state === 'connecting' && text.startsWith('40')) {
          state = 'joining';
          ws.send(`420${JSON.stringify(['join', options.channel])}`);
        } else if (state === 'joining' && text.startsWith('430')) {
          state = 'ready';
          clearTimeout(timer);
          resolve({ close: () => ws.close(1000), terminate: () => ws.terminate() });
        } else fail(`socket.io subscriber (${state}) got ${text.slice(0, 200)}`);
      }
    });
  });
}

function sioPublisher(options: PublisherOptions): Promise<Publisher> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const acks = new Map<number, (count: number) => void>();
    let nextAckId = 0;
    let state: 'opening' | 'connecting' | 'ready' | 'failed' = 'opening';
    let closing = false;
    const refuse = (message: string): void => {
      if (state === 'ready' || state === 'failed') return;
      state = 'failed';
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(message));
    };
    const timer = setTimeout(() => refuse(`socket.io publisher not connected after ${timeoutMs} ms`), timeoutMs);
    const ws = openSio(options.target, timeoutMs, {
      open() {},
      error: (message) => refuse(`socket.io publisher: ${message}`),
      close(code, reason) {
        if (state !== 'ready') refuse(`socket.io publisher closed before connected: ${code} ${reason}`);
        else if (!closing) options.onFailure(`socket.io publisher connection closed: ${code} ${reason}`);
      },
      message(raw) {
        const text = raw.toString();
        if (text === '2') {
          ws.send('3');
          return;
        }
        if (state === 'opening' && text.startsWith('0')) {
          state = 'connecting';
          ws.send(options.token === undefined ? '40' : `40${JSON.stringify({ token: options.token })}`);
          return;
        }
        if (state === 'connecting') {
          if (!text.startsWith('40')) {
            refuse(`socket.io publisher expected a connect packet, got ${text.slice(0, 200)}`);
            return;
          }
          state = 'ready';
          clearTimeout(timer);
          resolve({
            publish(data, onAck, room = options.channel) {
              const id = nextAckId++;
              acks.set(id, onAck);
              ws.send(`42${id}${JSON.stringify(['broadcast', { room, data }])}`);
            },
            close() {
              closing = true;
              ws.close(1000);
            }
          });
          return;
        }
        const ack = /^43(\d+)\[(\d+)\]$/.exec(text);
        const onAck = ack === null ? undefined : acks.get(Number(ack[1]));
        if (onAck !== undefined) {
          acks.delete(Number(ack![1]));
          onAck(Number(ack![2]));
        } else options.onFailure(`socket.io publisher got an unexpected packet: ${text.slice(0, 200)}`);
      }
    });
  });
}

function socketIoUrl(target: Target): string {
  return `http://${target.host}:${target.port}`;
}

function openSocketIo(target: Target, timeoutMs: number, token?: string): Socket {
  return io(socketIoUrl(target), {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: timeoutMs,
    ...(token === undefined ? {} : { auth: { token } })
  });
}

function socketIoSubscriber(options: SubscriberOptions): Promise<Subscriber> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const socket = openSocketIo(options.target, timeoutMs);
    let ready = false;
    const timer = setTimeout(() => {
      socket.disconnect();
      reject(new Error(`socket.io subscriber not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect_error', (err) => {
      clearTimeout(timer);
      socket.disconnect();
      reject(new Error(`socket.io subscriber: ${err.message}`));
    });
    socket.on('connect', () => {
      socket.emit('join', options.channel, () => {
        ready = true;
        clearTimeout(timer);
        resolve({ close: () => socket.disconnect(), terminate: () => socket.io.engine.close() });
      });
    });
    socket.on('event', (data: unknown) => {
      const delivery = asDelivery(data);
      if (delivery !== undefined) options.onEvent(delivery);
      else options.onUnexpected(JSON.stringify(data).slice(0, 200));
    });
    socket.on('disconnect', (reason) => {
      if (ready) options.onClose(0, reason);
    });
  });
}

function socketIoPublisher(options: PublisherOptions): Promise<Publisher> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const socket = openSocketIo(options.target, timeoutMs, options.token);
    let ready = false;
    let closing = false;
    const timer = setTimeout(() => {
      socket.disconnect();
      reject(new Error(`socket.io publisher not connected after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect_error', (err) => {
      clearTimeout(timer);
      socket.disconnect();
      reject(new Error(`socket.io publisher: ${err.message}`));
    });
    socket.on('disconnect', (reason) => {
      if (ready && !closing) options.onFailure(`socket.io publisher disconnected: ${reason}`);
    });
    socket.on('connect', () => {
      ready = true;
      clearTimeout(timer);
      resolve({
        publish(data, onAck, room = options.channel) {
          socket.emit('broadcast', { room, data }, (count: number) => onAck(count));
        },
        close() {
          closing = true;
          socket.disconnect();
        }
      });
    });
  });
}
