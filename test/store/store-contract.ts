/**
 * The behaviour every `Store` backend must show, run against a real database by
 * `sqlite-store.test.ts` and `postgres-store.test.ts`. Not a test file itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type {
  RecordBatch,
  ServerRecord,
  SessionCloseRecord,
  SessionOpenRecord,
  Store
} from '../../src/store/store.js';

/** A `sessions` row with timestamps as ISO strings and counters as numbers, whatever the backend. */
export interface SessionView {
  id: string;
  server_id: string;
  remote_addr: string;
  user_agent: string | null;
  user_id: string | null;
  protocol: string;
  connected_at: string;
  disconnected_at: string | null;
  close_code: number | null;
  bytes_in: number;
  bytes_out: number;
  messages_in: number;
  messages_out: number;
}

/** One opened store on a fresh database, plus a raw view of its `sessions` table. */
export interface ContractFixture {
  store: Store;
  sessions(): Promise<SessionView[]>;
  done(): Promise<void>;
}

/** Normalises a raw row from either backend. */
export function sessionView(row: Record<string, unknown>): SessionView {
  const ts = (v: unknown): string | null => (v === null ? null : v instanceof Date ? v.toISOString() : String(v));
  const num = (v: unknown): number => Number(v);
  return {
    id: String(row.id),
    server_id: String(row.server_id),
    remote_addr: String(row.remote_addr),
    user_agent: row.user_agent as string | null,
    user_id: row.user_id as string | null,
    protocol: String(row.protocol),
    connected_at: ts(row.connected_at)!,
    disconnected_at: ts(row.disconnected_at),
    close_code: row.close_code === null ? null : num(row.close_code),
    bytes_in: num(row.bytes_in),
    bytes_out: num(row.bytes_out),
    messages_in: num(row.messages_in),
    messages_out: num(row.messages_out)
  };
}

export const T0 = new Date('2026-11-27T06:30:46.123Z');
/** `T0` plus `s` seconds. */
export const at = (s: number): Date => new Date(T0.getTime() + s * 1000);

export function serverRecord(id: string, over: Partial<ServerRecord> = {}): ServerRecord {
  return {
    id,
    role: 'standalone',
    parentId: null,
    hostname: 'host-a',
    pid: 4242,
    address: 'http://0.0.0.0:8080',
    startedAt: T0,
    ...over
  };
}

export function openRecord(id: string, serverId: string, over: Partial<SessionOpenRecord> = {}): SessionOpenRecord {
  return {
    id,
    serverId,
    remoteAddr: '10.0.0.1',
    userAgent: 'test-agent/1.0',
    userId: null,
    protocol: 'json',
    connectedAt: at(1),
    ...over
  };
}

export function closeRecord(id: string, over: Partial<SessionCloseRecord> = {}): SessionCloseRecord {
  return {
    id,
    disconnectedAt: at(10),
    closeCode: 1000,
    bytesIn: 100,
    bytesOut: 200,
    messagesIn: 3,
    messagesOut: 4,
    ...over
  };
}

/** Registers the contract tests; `setup` gives each test its own fresh, opened store. */
export function storeContract(setup: () => Promise<ContractFixture>): void {
  const withFixture = (fn: (f: ContractFixture) => Promise<void>) => async () => {
    const f = await setup();
    try {
      await fn(f);
    } finally {
      await f.done();
    }
  };

  test(
    'registerServer writes a row listServers reads back; registering again changes nothing',
    withFixture(async ({ store }) => {
      const agent = serverRecord('srv-agent', { role: 'agent' });
      const worker = serverRecord('srv-worker', { role: 'worker', parentId: 'srv-agent', pid: 7, startedAt: at(2) });
      await store.registerServer(agent);
      await store.registerServer(worker);
      await store.registerServer({ ...worker, hostname: 'other' });
      assert.deepEqual(await store.listServers(), [
        { ...agent, lastSeenAt: agent.startedAt, stoppedAt: null },
        { ...worker, lastSeenAt: worker.startedAt, stoppedAt: null }
      ]);
    })
  );

  test(
    'setServerAddress replaces the address of one row',
    withFixture(async ({ store }) => {
      await store.registerServer(serverRecord('s1', { address: 'http://0.0.0.0:0' }));
      await store.registerServer(serverRecord('s2', { address: 'http://0.0.0.0:0' }));
      await store.setServerAddress('s1', 'http://0.0.0.0:43123');
      assert.deepEqual((await store.listServers()).map((r) => [r.id, r.address]), [['s1', 'http://0.0.0.0:43123'], ['s2', 'http://0.0.0.0:0']]);
    })
  );

  test(
    'touchServer moves last_seen_at and stopServer sets stopped_at once',
    withFixture(async ({ store }) => {
      await store.registerServer(serverRecord('s1'));
      await store.touchServer('s1', at(30));
      await store.stopServer('s1', at(40));
      await store.stopServer('s1', at(50));
      const [row] = await store.listServers();
      assert.deepEqual(row!.lastSeenAt, at(30));
      assert.deepEqual(row!.stoppedAt, at(40));
    })
  );

  test(
    'writeBatch applied twice leaves the same rows, and a close only fills a session still open',
    withFixture(async ({ store, sessions }) => {
      await store.registerServer(serverRecord('s1'));
      const first: RecordBatch = {
        opens: [
          openRecord('a', 's1'),
          openRecord('b', 's1', { protocol: 'bin', userId: 'u-1', userAgent: null }),
          openRecord('c', 's1')
        ],
        closes: [closeRecord('a', { closeCode: 1001, bytesIn: 5_000_000_000 })]
      };
      await store.writeBatch(first);
      const once = await sessions();
      await store.writeBatch(first);
      assert.deepEqual(await sessions(), once);
      assert.equal(once.length, 3);
      assert.deepEqual(once[0], {
        id: 'a',
        server_id: 's1',
        remote_addr: '10.0.0.1',
        user_agent: 'test-agent/1.0',
        user_id: null,
        protocol: 'json',
        connected_at: at(1).toISOString(),
        disconnected_at: at(10).toISOString(),
        close_code: 1001,
        bytes_in: 5_000_000_000,
        bytes_out: 200,
        messages_in: 3,
        messages_out: 4
      });
      assert.equal(once[1]!.disconnected_at, null);
      assert.equal(once[1]!.bytes_in, 0);

      // A second close of `a` does not overwrite the first; a close without its open inserts nothing.
      const second: RecordBatch = {
        opens: [],
        closes: [
          closeRecord('b', { closeCode: 1006, disconnectedAt: at(20) }),
          closeRecord('a', { closeCode: 4000, disconnectedAt: at(30) }),
          closeRecord('ghost')
        ]
      };
      await store.writeBatch(second);
      await store.writeBatch(second);
      const after = await sessions();
      assert.deepEqual(after[0], once[0]);
      assert.equal(after[1]!.close_code, 1006);
      assert.equal(after[1]!.disconnected_at, at(20).toISOString());
      assert.equal(after[2]!.disconnected_at, null);
      assert.equal(after.length, 3);
      await store.writeBatch({ opens: [], closes: [] });
    })
  );

  test(
    'closeOutServer closes the sessions still open with the given code and stops the server',
    withFixture(async ({ store, sessions }) => {
      await store.registerServer(serverRecord('gone'));
      await store.registerServer(serverRecord('alive'));
      await store.writeBatch({
        opens: [openRecord('g1', 'gone'), openRecord('g2', 'gone'), openRecord('g3', 'gone'), openRecord('l1', 'alive')],
        closes: [closeRecord('g3')]
      });
      assert.equal(await store.closeOutServer('gone', at(60), 1001), 2);
      const rows = await sessions();
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const id of ['g1', 'g2']) {
        assert.equal(byId.get(id)!.close_code, 1001);
        assert.equal(byId.get(id)!.disconnected_at, at(60).toISOString());
      }
      assert.equal(byId.get('g3')!.close_code, 1000);
      assert.equal(byId.get('l1')!.disconnected_at, null);
      const servers = await store.listServers();
      assert.deepEqual(servers.find((s) => s.id === 'gone')!.stoppedAt, at(60));
      assert.equal(servers.find((s) => s.id === 'alive')!.stoppedAt, null);
      assert.equal(await store.closeOutServer('gone', at(70), 1001), 0);
    })
  );

  test(
    'closeOutStaleServers closes out only running servers not seen since staleBefore, with 1006',
    withFixture(async ({ store, sessions }) => {
      await store.registerServer(serverRecord('stale'));
      await store.registerServer(serverRecord('fresh'));
      await store.registerServer(serverRecord('stopped'));
      await store.touchServer('fresh', at(100));
      await store.stopServer('stopped', at(5));
      await store.writeBatch({
        opens: [
          openRecord('s1', 'stale'),
          openRecord('s2', 'stale'),
          openRecord('f1', 'fresh'),
          openRecord('x1', 'stopped')
        ],
        closes: []
      });
      assert.deepEqual(await store.closeOutStaleServers(at(90), at(120)), { servers: 1, sessions: 2 });
      const byId = new Map((await sessions()).map((r) => [r.id, r]));
      for (const id of ['s1', 's2']) {
        assert.equal(byId.get(id)!.close_code, 1006);
        assert.equal(byId.get(id)!.disconnected_at, at(120).toISOString());
      }
      assert.equal(byId.get('f1')!.disconnected_at, null);
      assert.equal(byId.get('x1')!.disconnected_at, null);
      const servers = new Map((await store.listServers()).map((s) => [s.id, s]));
      assert.deepEqual(servers.get('stale')!.stoppedAt, at(120));
      assert.equal(servers.get('fresh')!.stoppedAt, null);
      assert.deepEqual(servers.get('stopped')!.stoppedAt, at(5));
      assert.deepEqual(await store.closeOutStaleServers(at(90), at(130)), { servers: 0, sessions: 0 });
    })
  );

  test(
    'a session of an unregistered server is refused (foreign key), and the batch with it',
    withFixture(async ({ store, sessions }) => {
      await store.registerServer(serverRecord('s1'));
      await assert.rejects(store.writeBatch({ opens: [openRecord('ok', 's1'), openRecord('bad', 'nope')], closes: [] }));
      assert.deepEqual(await sessions(), []);
    })
  );

  test(
    'ping is true while open and false, not a rejection, after close',
    withFixture(async ({ store }) => {
      assert.equal(await store.ping(), true);
      await store.close();
      assert.equal(await store.ping(), false);
      await store.close();
    })
  );
}
