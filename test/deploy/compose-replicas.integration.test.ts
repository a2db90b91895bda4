/**
 * compose.yaml's zenconn service, run without Docker: its command and environment, as
 * Compose resolves them from compose.yaml and .env.example, behind the image's
 * ENTRYPOINT and ENV, two replicas, each in a folder laid out like the image's /app.
 *
 * What differs from `docker compose up --scale zenconn=2`, and only that:
 * - host names: `postgres` is the test PostgreSQL (a fresh schema) and `redis` the test
 *   Redis (a fresh bus prefix); the URLs' shape is checked against .env first;
 * - each replica listens on 127.0.0.1 and a port of its own instead of 0.0.0.0:8080 in
 *   a network namespace of its own;
 * - POSTGRES_PASSWORD and the secrets, empty in .env.example, get test values, as a user
 *   fills them in .env.
 * Clients on both replicas then exchange messages: through each agent's workers and the
 * Redis bus between the replicas.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ROOT } from '../helpers/process.js';
import { withSchema, type TestSchema } from '../helpers/pg.js';
import { TestClient } from '../helpers/client.js';
import { waitFor } from '../helpers/wait.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { buildContext, interpolateDocument, parseDotenv, readComposeFile, serviceEnvironment, argv, type ComposeFile, type ComposeService } from './compose-file.js';
import { imageConfig, parseDockerfile, type ImageConfig } from './dockerfile.js';
import { childProcesses, freePort, nofileLimits, startContainer, waitForHttp, type NativeContainer } from './native-container.js';

const REDIS_URL = process.env.ZENCONN_TEST_REDIS_URL || 'redis://127.0.0.1:6379/0';
/** compose.yaml's stop_grace_period is checked against this in the test below. */
const GRACE_MS = 15_000;

const MISSING_HINT =
  'compose.yaml runs `zenconn agent` with ZENCONN_BUS=redis://…: this test needs the agent/worker model (src/cli/agent.ts, src/cluster) ' +
  'and the Redis bus (src/bus/redis-bus.ts) built into dist/. ';

interface Replica {
  name: string;
  port: number;
  appDir: string;
  proc: NativeContainer;
}

let schema: TestSchema;
let scratch: string;
let image: ImageConfig;
let service: ComposeService;
let env: Map<string, string>;
let busPrefix: string;
const replicas: Replica[] = [];
const clients: TestClient[] = [];

/** A folder standing for the image's /app: the built files linked in, data/ its own (the volume). */
function appFolder(name: string): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, 'data'), { recursive: true });
  for (const entry of ['package.json', 'bin', 'dist', 'node_modules', 'public', 'admin', 'deploy']) symlinkSync(join(ROOT, entry), join(dir, entry));
  return dir;
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'zenconn-compose-'));
  const compose = readComposeFile() as ComposeFile;
  const dotenv = parseDotenv(readFileSync(join(ROOT, '.env.example'), 'utf8'), '.env.example');
  // What a user fills in after `cp .env.example .env`.
  dotenv.set('POSTGRES_PASSWORD', randomBytes(12).toString('hex'));
  dotenv.set('ZENCONN_JWT_SECRET', randomBytes(32).toString('hex'));
  dotenv.set('ZENCONN_CHANNEL_SECRET', randomBytes(32).toString('hex'));
  const resolved = interpolateDocument(compose, dotenv);
  const zen = Object.entries(resolved.services).filter(([, s]) => buildContext(s) === '.');
  assert.equal(zen.length, 1, 'one service is built from the repository Dockerfile');
  service = zen[0]![1];
  image = imageConfig(parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')));
  env = serviceEnvironment(service, dotenv, dotenv);

  // Service host names → the test's PostgreSQL and Redis, after checking the URLs point
  // at the compose services with the .env credentials.
  const db = new URL(env.get('ZENCONN_DATABASE') ?? 'missing:');
  assert.equal(db.protocol, 'postgres:');
  assert.equal(db.hostname, 'postgres', 'ZENCONN_DATABASE names the postgres service');
  assert.equal(db.port || '5432', '5432');
  assert.equal(decodeURIComponent(db.username), dotenv.get('POSTGRES_USER'));
  assert.equal(decodeURIComponent(db.password), dotenv.get('POSTGRES_PASSWORD'));
  assert.equal(db.pathname, `/${dotenv.get('POSTGRES_DB')}`);
  const bus = new URL(env.get('ZENCONN_BUS') ?? 'missing:');
  assert.equal(bus.protocol, 'redis:');
  assert.equal(bus.hostname, 'redis', 'ZENCONN_BUS names the redis service');
  assert.equal(bus.port || '6379', '6379');
  schema = await withSchema();
  busPrefix = `zc_test_${randomBytes(6).toString('hex')}:`;
  env.set('ZENCONN_DATABASE', schema.url);
  env.set('ZENCONN_BUS', REDIS_URL);
  env.set('ZENCONN_BUS_PREFIX', busPrefix);
  env.set('ZENCONN_HOST', '127.0.0.1');
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(replicas.map((r) => r.proc.stop(GRACE_MS).catch(() => undefined)));
  await schema?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('the zenconn service runs the agent, with a worker per CPU, and stops within its grace period', () => {
  const command = argv(service.command ?? image.cmd);
  assert.equal(command[0], 'agent');
  assert.equal(env.get('ZENCONN_WORKERS') ?? '', '', 'workers = CPUs: ZENCONN_WORKERS is left unset');
  assert.equal(service.stop_grace_period, `${GRACE_MS / 1000}s`);
});

test('two replicas start from compose.yaml and pass the image health check', async () => {
  const command = argv(service.command ?? image.cmd);
  for (const name of ['zenconn-1', 'zenconn-2']) {
    const port = await freePort();
    const appDir = appFolder(name);
    const proc = startContainer({ image, appDir, command, env: { ...Object.fromEntries(env), ZENCONN_PORT: String(port) }, softNofile: 1024 });
    replicas.push({ name, port, appDir, proc });
  }
  for (const r of replicas) await waitForHttp(r.port, '/healthz', r.proc, 30_000, `${r.name}: ${MISSING_HINT}`);
  for (const r of replicas) {
    const res = await fetch(`http://127.0.0.1:${r.port}/readyz`);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, `${r.name} /readyz: ${JSON.stringify(body)}`);
    assert.equal(body.bus, true, `${r.name}: the bus is ready`);
  }
});

test('each replica is an agent with a worker per CPU, all with the open-files limit raised to the hard limit', () => {
  assert.equal(replicas.length, 2, 'the replicas started');
  for (const r of replicas) {
    const workers = childProcesses(r.proc.pid);
    assert.equal(workers.length, availableParallelism(), `${r.name}: workers ${JSON.stringify(workers)}`);
    for (const pid of [r.proc.pid, ...workers.map((w) => w.pid)]) {
      const { soft, hard } = nofileLimits(pid);
      assert.equal(soft, hard, `${r.name} pid ${pid}: started with a soft limit of 1024, Node raises it to the hard limit`);
    }
  }
});

/** Broadcasts from `sender` until `receiver` gets the event (interest crosses the bus asynchronously); returns the event's data. */
async function deliver(sender: TestClient, receiver: TestClient, channel: string, label: string): Promise<string> {
  let marker = '';
  let attempt = 0;
  await waitFor(
    `${label}: an event from ${sender.sessionId} to reach ${receiver.sessionId}`,
    async () => {
      marker = `${label}-${attempt++}-${randomBytes(4).toString('hex')}`;
      sender.send({ type: 'broadcast', channel, data: { marker } });
      try {
        await receiver.next((f: ServerFrame) => f.type === 'event' && f.channel === channel && (f.data as { marker?: string }).marker === marker, 500);
        return true;
      } catch {
        return false; // not yet: send again
      }
    },
    15_000,
    0
  );
  return marker;
}

test("a broadcast from one replica's client reaches the other replica's subscribers, both ways", async () => {
  assert.equal(replicas.length, 2, 'the replicas started');
  const [a, b] = replicas as [Replica, Replica];
  // Two clients per replica: with a worker per CPU they may land on different workers.
  for (const r of [a, a, b, b]) clients.push(await TestClient.connect(r.port));
  const [a1, a2, b1, b2] = clients as [TestClient, TestClient, TestClient, TestClient];
  for (const c of clients) assert.deepEqual(await c.subscribe('news'), { type: 'subscribed', channel: 'news' });

  const isEvent = (marker: string) => (f: ServerFrame) => f.type === 'event' && (f.data as { marker?: string }).marker === marker;
  // Within one replica first (the agent's workers), so a failure below is the bus between replicas.
  await deliver(a1, a2, 'news', 'within-a');
  let m1: string;
  try {
    m1 = await deliver(a1, b1, 'news', 'a-to-b');
  } catch (err) {
    throw new Error(
      `${(err as Error).message}. Events flow within a replica but not between the two, which share only Redis: ` +
        '`zenconn agent` and its workers must publish to and receive from ZENCONN_BUS as `zenconn serve` does ' +
        '(compose.yaml runs the agent with ZENCONN_BUS=redis://redis:6379/0).'
    );
  }
  await b2.next(isEvent(m1), 3000);
  await a2.next(isEvent(m1), 3000);
  const m2 = await deliver(b2, a1, 'news', 'b-to-a');
  await a2.next(isEvent(m2), 3000);
  await b1.next(isEvent(m2), 3000);
});

test('both replicas record their agent and sessions in the one PostgreSQL database', async () => {
  assert.equal(replicas.length, 2, 'the replicas started');
  const pids = replicas.map((r) => r.proc.pid);
  const agents = await schema.query<{ n: number }>(`SELECT count(*)::int AS n FROM servers WHERE role = 'agent' AND pid = ANY($1::int[])`, [pids]);
  assert.equal(agents[0]!.n, 2);
  let sessions = 0;
  await waitFor(
    `a session row for each of the ${clients.length} clients`,
    async () => {
      sessions = (await schema.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions'))[0]!.n;
      return sessions >= clients.length;
    },
    5000,
    100
  );
  assert.ok(sessions >= clients.length, `sessions recorded: ${sessions}`);
});

test('SIGTERM (docker stop) stops each replica with status 0 within stop_grace_period', async () => {
  assert.equal(replicas.length, 2, 'the replicas started');
  for (const c of clients.splice(0)) c.ws.terminate();
  const codes = await Promise.all(replicas.map((r) => r.proc.stop(GRACE_MS)));
  assert.deepEqual(codes, [0, 0], replicas.map((r) => `${r.name}: ${r.proc.stderr().slice(-2000)}`).join('\n'));
});
