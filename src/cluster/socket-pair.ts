import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How long one pair may take to connect. */
const PAIR_TIMEOUT_MS = 5000;

/**
 * Makes connected pairs of Unix-domain sockets (the direct links between workers) by
 * connecting to a server of its own. Jobs run one at a time, so an accepted end is its
 * connecting end's pair. The server listens only while jobs are queued (a socket in a
 * fresh directory only this user can enter, removed once the last queued job is done),
 * so a process that is killed leaves nothing behind but in that moment.
 */
export class SocketPairMaker {
  private server: Server | null = null;
  private dir: string | null = null;
  /** The accepted end's taker while a pair is being made. */
  private accepted: ((socket: Socket) => void) | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** Jobs queued or running; the server closes when it drops to 0. */
  private pending = 0;

  /**
   * Queues `job`, which may call `make()` for pairs; jobs run one after the other. The
   * job handles its own errors (one that throws anyway does not stop the next ones).
   */
  enqueue(job: () => Promise<void>): void {
    this.pending++;
    this.chain = this.chain.then(async () => {
      try {
        await job();
      } catch {
        // The job's to report.
      } finally {
        this.accepted = null;
        if (--this.pending === 0) this.close();
      }
    });
  }

  /** Makes one connected pair (from inside a queued job). */
  async make(): Promise<[Socket, Socket]> {
    if (this.server === null) await this.open();
    return this.connectPair(this.server!.address() as string);
  }

  /** Stops listening and removes the socket's directory (also while stopping). */
  close(): void {
    this.server?.close();
    this.server = null;
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  /** Connects to the server at `path`: resolves with both ends once both are up. */
  private connectPair(path: string): Promise<[Socket, Socket]> {
    return new Promise<[Socket, Socket]>((resolve, reject) => {
      let accepted: Socket | null = null;
      let connected = false;
      const client = connect({ path, allowHalfOpen: false }, () => {
        connected = true;
        settle();
      });
      const timer = setTimeout(() => {
        client.destroy();
        accepted?.destroy();
        reject(new Error('pair connection timed out'));
      }, PAIR_TIMEOUT_MS);
      const settle = (): void => {
        if (!connected || accepted === null) return;
        clearTimeout(timer);
        client.removeAllListeners('error');
        client.pause();
        resolve([client, accepted]);
      };
      client.once('error', (err) => {
        clearTimeout(timer);
        accepted?.destroy();
        reject(err);
      });
      this.accepted = (socket) => {
        accepted = socket;
        settle();
      };
    });
  }

  private async open(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'zenconn-'));
    const server = createServer({ pauseOnConnect: true }, (socket) => {
      const take = this.accepted;
      this.accepted = null;
      if (take === null) socket.destroy();
      else take(socket);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(join(this.dir!, 'peers.sock'), () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.close();
      throw err;
    }
    this.server = server;
  }
}
