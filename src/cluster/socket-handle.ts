import { Socket } from 'node:net';

/** `process.send` or `ChildProcess.send`, as used to pass a handle. */
type SendWithHandle = (message: never, handle: never, options: undefined, callback: (err: Error | null) => void) => boolean;

/**
 * Passes a TCP connection to the process at the other end of `send` as its raw handle
 * (Node's `net.Native`), not as a `net.Socket`. A socket would start reading where it
 * lands, and one accepted by a `net.Server` is tracked in the receiving process by a
 * close listener for as long as it lives (child_process's SocketListReceive, ~200 bytes
 * per session, #15). This process's copy closes once the message is written, or at once
 * when it cannot be sent (then `onFailed`).
 */
export function sendSocketHandle(send: SendWithHandle | undefined, message: object, socket: Socket, onFailed: () => void = () => undefined): void {
  const handle = (socket as unknown as { _handle?: object | null })._handle;
  if (send === undefined || !handle) {
    onFailed();
    socket.destroy();
    return;
  }
  try {
    send(message as never, handle as never, undefined, (err) => {
      if (err) onFailed();
      socket.destroy();
    });
  } catch {
    onFailed();
    socket.destroy();
  }
}

/**
 * The socket for a handle `sendSocketHandle` passed: reading at once (a connection to
 * serve), or `paused` (to place elsewhere unread, as a `pauseOnConnect` listener gives it).
 */
export function socketFromHandle(handle: unknown, paused: boolean): Socket {
  return new Socket({ handle, readable: true, writable: true, pauseOnCreate: paused } as ConstructorParameters<typeof Socket>[0]);
}
