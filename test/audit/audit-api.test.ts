import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { unpack } from 'msgpackr';
import { makeToken } from '../helpers/tokens.js';
import type { TestServer } from '../helpers/server.js';
import { encodePayload } from '../../src/audit/audit-payload.js';
import { newId } from '../../src/protocol/ids.js';
import type { AuditRecord } from '../../src/store/store.js';
import { startAuditServer } from './helpers.js';

interface Page {
  rows: Array<Record<string, unknown>>;
  next: string | null;
}

const COLUMNS = ['id', 'message_id', 'at', 'server_id', 'session_id', 'user_id', 'direction', 'type', 'channel', 'payload', 'recipients'];

describe('GET /api/audit', () => {
  let srv: TestServer;
  let token: string;
  const now = Date.now();
  const seeded: AuditRecord[] = [];

  before(async () => {
    srv = await startAuditServer();
    token = await makeToken('auditor', ['audit']);
    // 250 rows, one a second, ending two minutes ago: channel `api-a` or `api-b`, user alice on every 5th.
    for (let i = 0; i < 250; i++) {
      const p = encodePayload(i === 7 ? { bytes: new Uint8Array([1, 2, 3]) } : { i });
      seeded.push({
        id: newId(),
        messageId: `m${i}`,
        at: new Date(now - 120_500 - (249 - i) * 1000),
        serverId: 'seeded',
        sessionId: `sess-${i % 2}`,
        userId: i % 5 === 0 ? 'alice' : null,
        direction: i % 2 === 0 ? 'in' : 'out',
        type: i % 2 === 0 ? 'broadcast' : 'event',
        channel: i % 3 === 0 ? 'api-a' : 'api-b',
        recipients: i % 2 === 0 ? null : 3,
        payload: p.json,
        payloadBin: p.bin
      });
    }
    await srv.node.store.writeAudit(seeded);
  });
  after(() => srv.stop());

  const get = (query: string, headers: Record<string, string> = {}, bearer: string | null = token): Promise<Response> =>
    fetch(`http://127.0.0.1:${srv.port}/api/audit${query}`, { headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...headers } });
  const page = async (query: string): Promise<Page> => {
    const res = await get(query);
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as Page;
  };

  test('a token with the audit grant is required: 401 without or with a bad one, 403 without the grant', async () => {
    assert.equal((await get('', {}, null)).status, 401);
    assert.equal((await get('', {}, 'not-a-jwt')).status, 401);
    const forbidden = await get('', {}, await makeToken('bob', ['publish', 'broadcast']));
    assert.equal(forbidden.status, 403);
    assert.equal(((await forbidden.json()) as { code: string }).code, 'ERR_AUTH_FORBIDDEN');
    assert.equal((await get(`?access_token=${token}&limit=1`, {}, null)).status, 200);
  });

  test('pages, newest first, keyed by the column names, follow the cursor to the end without overlap', async () => {
    const seen: string[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const p: Page = await page(`?channel=api-b&limit=60${next ? `&cursor=${next}` : ''}`);
      pages++;
      for (const r of p.rows) {
        assert.deepEqual(Object.keys(r), COLUMNS);
        seen.push(r.message_id as string);
      }
      next = p.next;
    } while (next !== null);
    const expected = seeded.filter((r) => r.channel === 'api-b').map((r) => r.messageId!).reverse();
    assert.deepEqual(seen, expected);
    assert.equal(pages, Math.ceil(expected.length / 60));
    const first = await page('?limit=1&channel=api-a');
    assert.equal(first.rows[0]!.message_id, 'm249');
    assert.equal(first.rows[0]!.at, seeded[249]!.at.toISOString());
    assert.deepEqual(first.rows[0]!.payload, { i: 249 });
  });

  test('filters: session, user, type, direction, since/until (relative or ISO), order=asc, message', async () => {
    const all = async (q: string) => (await page(q + '&limit=1000')).rows.map((r) => r.message_id);
    const expect = (f: (r: AuditRecord, i: number) => boolean) => seeded.filter(f).map((r) => r.messageId).reverse();
    assert.deepEqual(await all('?user=alice'), expect((_, i) => i % 5 === 0));
    assert.deepEqual(await all('?session=sess-1&type=event&direction=out'), expect((_, i) => i % 2 === 1));
    assert.deepEqual(await all('?type=broadcast&channel=api-a'), expect((_, i) => i % 2 === 0 && i % 3 === 0));
    assert.deepEqual(await all(`?since=${encodeURIComponent(seeded[240]!.at.toISOString())}&channel=api-a`), expect((r, i) => i >= 240 && r.channel === 'api-a'));
    // Relative: the rows end two minutes ago, one a second. A relative filter is relative to when the query runs: the expectation is taken at its
    // start and at its end; should a row's time fall between the two, the query is asked again.
    const relative = async (q: string, agoMs: number, asc: boolean): Promise<void> => {
      for (;;) {
        const t0 = Date.now();
        const got = await all(q);
        const t1 = Date.now();
        const want = (t: number) => {
          const rows = expect((r) => r.channel === 'api-a' && r.at.getTime() >= t - agoMs);
          return asc ? rows.reverse() : rows;
        };
        const [a, b] = [want(t0), want(t1)];
        if (a.length !== b.length) continue;
        assert.deepEqual(got, a);
        return;
      }
    };
    await relative('?since=130s&until=1m&channel=api-a', 130_000, false);
    await relative('?order=asc&channel=api-a&since=125s', 125_000, true);
    assert.deepEqual(await all('?message=m42'), ['m42']);
  });

  test('bad filters, limits and cursors are 400 with the reason', async () => {
    for (const q of ['?direction=sideways', '?limit=0', '?limit=1001', '?limit=ten', '?since=yesterday', '?order=up', '?cursor=garbage', '?channel=']) {
      const res = await get(q);
      assert.equal(res.status, 400, q);
      assert.equal(((await res.json()) as { code: string }).code, 'ERR_HTTP_BAD_REQUEST');
    }
    // A cursor from one order is refused in the other.
    const { next } = await page('?limit=1');
    assert.equal((await get(`?order=asc&cursor=${next}`)).status, 400);
  });

  test('X-Bin-Protocol answers in MessagePack with exact payloads (binary as bytes)', async () => {
    const res = await get('?message=m7', { 'x-bin-protocol': '1' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/msgpack');
    const body = unpack(Buffer.from(await res.arrayBuffer())) as Page;
    const payload = body.rows[0]!.payload as { bytes: Uint8Array };
    assert.ok(payload.bytes instanceof Uint8Array);
    assert.deepEqual([...payload.bytes], [1, 2, 3]);
    const json = await page('?message=m7');
    assert.deepEqual(json.rows[0]!.payload, { bytes: 'AQID' });
  });

  test('Accept: application/x-ndjson streams every matching row, one object per line', async () => {
    const res = await get('?channel=api-b', { accept: 'application/x-ndjson' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^application\/x-ndjson/);
    const lines = (await res.text()).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => l.message_id), seeded.filter((r) => r.channel === 'api-b').map((r) => r.messageId).reverse());
    assert.deepEqual(Object.keys(lines[0]!), COLUMNS);
    const limited = await get('?limit=5&order=asc', { accept: 'application/x-ndjson' });
    assert.equal((await limited.text()).trimEnd().split('\n').length, 5);
    assert.equal((await get('?direction=nope', { accept: 'application/x-ndjson' })).status, 400);
  });
});
