import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEntry } from '../../src/audit/audit-sink.js';
import WebSocket from 'ws';
import { startServer, type TestServer } from '../helpers/server.js';
import { makeToken } from '../helpers/tokens.js';
import type { AuditQuery, AuditRecord, Store } from '../../src/store/store.js';
import { DelegatingStore } from '../store/delegating-store.js';

/** A fresh temp folder. */
export function tempFolder(prefix = 'zenconn-audit-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export { waitFor } from '../helpers/wait.js';
import { waitFor } from '../helpers/wait.js';

/** An audit entry with defaults (an `in` broadcast on `news`). */
export function entry(over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    messageId: null,
    at: new Date(),
    sessionId: 's1',
    userId: null,
    direction: 'in',
    type: 'broadcast',
    channel: 'news',
    payload: { n: 1 },
    recipients: null,
    ...over
  };
}

/** Every row matching `q` (oldest first). */
export async function allRows(store: Store, q: Partial<AuditQuery> = {}): Promise<AuditRecord[]> {
  return store.queryAudit({
    since: null,
    until: null,
    channel: null,
    sessionId: null,
    userId: null,
    type: null,
    direction: null,
    messageId: null,
    after: null,
    limit: 1_000_000,
    ...q,
    order: q.order ?? 'asc'
  });
}

/**
 * A real store with faults switched on and off by the test (a wrapper, not a mock):
 * `fail` makes writeAudit reject as a lost connection would; `delayMs` holds every
 * writeAudit that long before it reaches the database. Committed ids are noted.
 */
export class FaultyStore extends DelegatingStore {
  fail = false;
  delayMs = 0;
  readonly writes: number[] = [];
  readonly committed = new Set<string>();
  /** Message ids of committed rows (the test's handle on a row before it has an id). */
  readonly committedMessages = new Set<string>();
  override async writeAudit(rows: readonly AuditRecord[]): Promise<void> {
    this.writes.push(rows.length);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs).unref());
    if (this.fail) throw Object.assign(new Error('connection terminated'), { code: 'ECONNRESET' });
    await this.inner.writeAudit(rows);
    for (const r of rows) {
      this.committed.add(r.id);
      if (r.messageId !== null) this.committedMessages.add(r.messageId);
    }
  }
}

/** A logger that keeps what it is given (the store/writer logger shape). */
export class MemoryLogger {
  readonly lines: Array<{ level: string; msg: string; obj: object }> = [];
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', msg, obj });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', msg, obj });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', msg, obj });
  }
  has(level: string, text: RegExp): boolean {
    return this.lines.some((l) => l.level === level && text.test(l.msg));
  }
}

/**
 * An in-process server (test/helpers/server.ts) whose audit journal is in a temp folder
 * of its own, not ./data/journal.
 */
export async function startAuditServer(flags: Record<string, string | boolean> = {}, extra: Parameters<typeof startServer>[1] = {}): Promise<TestServer> {
  return startServer({ 'audit-journal-dir': join(tempFolder(), 'journal'), ...flags }, extra);
}

/**
 * A client that broadcasts `{seq}` messages as fast as its `received` answers come back
 * (at most `window` unanswered), noting which were acknowledged: `received` answers
 * come in the order of the broadcasts, so the oldest unanswered one is the one answered.
 * Its token holds `publish` (no subscription needed, exempt from the rate limit).
 */
export class Publisher {
  readonly acked: string[] = [];
  sent = 0;
  private readonly outstanding: string[] = [];
  private running = true;
  closed = false;

  private constructor(
    private readonly ws: WebSocket,
    private readonly name: string,
    private readonly channel: string,
    private readonly window: number
  ) {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as { type: string };
      if (f.type === 'received') {
        this.acked.push(this.outstanding.shift()!);
        this.pump();
      }
    });
    ws.on('close', () => (this.closed = true));
    ws.on('error', () => undefined);
  }

  static async start(port: number, name: string, channel: string, window = 8): Promise<Publisher> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${await makeToken(name, ['publish'])}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve()); // `accepted`
      ws.once('error', reject);
    });
    const p = new Publisher(ws, name, channel, window);
    p.pump();
    return p;
  }

  private pump(): void {
    while (this.running && !this.closed && this.outstanding.length < this.window) {
      const seq = `${this.name}-${this.sent++}`;
      this.outstanding.push(seq);
      this.ws.send(JSON.stringify({ type: 'broadcast', channel: this.channel, data: { seq } }));
    }
  }

  /** Stops sending; resolves once every sent message is answered (or the socket closed). */
  async drain(timeoutMs = 10_000): Promise<void> {
    this.running = false;
    await waitFor(`${this.name} answered`, () => this.outstanding.length === 0 || this.closed, timeoutMs);
  }

  stop(): void {
    this.running = false;
  }

  close(): void {
    this.running = false;
    this.ws.terminate();
  }
}
