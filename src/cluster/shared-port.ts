import * as net from 'node:net';
import { isIPv6, type AddressInfo } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { ZenError } from '../errors.js';

/** A bound TCP handle: what `child.send(message, handle)` sends as `net.Native` and `server.listen(handle)` takes. */
export type NativeHandle = object & { readonly __native?: never };

interface TcpHandle {
  getsockname(out: Record<string, unknown>): number;
  close(): void;
}

/**
 * `net._createServerHandle`: a TCP handle bound to the address but not listening, the
 * way the `cluster` module's primary makes the one socket its workers share (its
 * `SHARED_HANDLE` scheme). It has been in `net` since Node 0.x and still is in 24;
 * if it ever goes, `--accept shared` says so at start and `--accept agent` still works.
 */
type CreateServerHandle = (address: string, port: number, addressType: 4 | 6, fd?: number, flags?: number) => TcpHandle | number;

/**
 * The agent's public port under `--accept shared`: one socket, bound here and listened
 * on by every ready worker (shared-accept.ts). The kernel hands each new connection to
 * one of the processes that poll it, so a connection costs the agent nothing: no accept,
 * no handle sent over IPC. The agent itself never listens on it: it only keeps the
 * handle to give to workers that start later, and closes it when it stops.
 */
export class SharedPort {
  private closed = false;

  private constructor(
    private readonly tcp: TcpHandle,
    readonly address: AddressInfo
  ) {}

  /** Binds `host:port` (0 = a free port). Throws as `listen` would (`code`: `EADDRINUSE`, …). */
  static bind(host: string, port: number): SharedPort {
    const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
    if (typeof create !== 'function') throw new ZenError('ERR_CONFIG_INVALID', '--accept shared: this Node.js has no net._createServerHandle; use --accept agent');
    const tcp = create(host, port, isIPv6(host) ? 6 : 4);
    if (typeof tcp === 'number') throw listenError(tcp, host, port);
    const out: Record<string, unknown> = {};
    const err = tcp.getsockname(out);
    if (err !== 0) {
      tcp.close();
      throw listenError(err, host, port);
    }
    return new SharedPort(tcp, { address: String(out.address), family: String(out.family), port: Number(out.port) });
  }

  /** What goes to a worker with its `listen` message; null once closed. */
  get handle(): NativeHandle | null {
    return this.closed ? null : (this.tcp as NativeHandle);
  }

  /** Closes the agent's copy (the workers close theirs when they drain). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tcp.close();
  }
}

/** An error shaped as `server.listen`'s (`code`, `errno`, `syscall`, `address`, `port`): `listen EADDRINUSE: 0.0.0.0:8080`. */
function listenError(errno: number, host: string, port: number): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`listen ${code}: ${host}:${port}`), { code, errno, syscall: 'listen', address: host, port });
}
