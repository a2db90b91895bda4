/**
 * The Dockerfile's build and start, without Docker: the repository's files (tracked and
 * untracked-but-not-ignored, as `docker build .` would see them) filtered by
 * .dockerignore become the build context; every stage's WORKDIR, COPY, ENV and RUN step
 * runs natively, in order, each stage's `/` a folder of its own (`apt-get` steps are
 * left out: this machine has the compilers they install). The runtime stage's folder is
 * then the image: its ENTRYPOINT runs `--version`, `serve` and the default CMD, as an
 * unprivileged user standing for USER, and its HEALTHCHECK is run against each.
 *
 * This is the only test that runs `npm ci` (with native builds): allow it minutes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from '../helpers/process.js';
import { isIgnored, parseDockerignore } from './dockerignore.js';
import { buildNatively, imageConfig, parseDockerfile, stageRoot, type ImageConfig, type StepReport } from './dockerfile.js';
import { freePort, runContainer, runHealthcheck, startContainer, waitForHttp } from './native-container.js';

const BUILD_TIMEOUT_MS = 280_000;
/**
 * The image runs as `node`, owner of /app/data only. As root, the test plays it with
 * `nobody` (65534): the runtime folder stays root's, data/ is handed to nobody as
 * `COPY --chown` does, and the image runs as nobody, so a write outside data/ fails
 * here as it would in the container. Not root: the test's own user plays it.
 */
const STAND_IN = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : null;
const MISSING_AGENT = 'the image runs `zenconn agent` by default: this needs the agent/worker model (src/cli/agent.ts, src/cluster) in the build. ';

let scratch: string;
let context: string;
let app: string;
let image: ImageConfig;
let reports: StepReport[] = [];
let built = false;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'zenconn-image-'));
  chmodSync(scratch, 0o755); // the stand-in user must reach the runtime folder, as `node` reaches /app
  context = join(scratch, 'context');
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f !== '' && existsSync(join(ROOT, f)));
  const ignore = parseDockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
  for (const f of files) {
    if (isIgnored(ignore, f)) continue;
    mkdirSync(dirname(join(context, f)), { recursive: true });
    cpSync(join(ROOT, f), join(context, f));
  }
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('.dockerignore keeps secrets, local state, tests and benchmarks out of the build context', () => {
  const ignore = parseDockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
  for (const p of ['.env', 'data/zenconn.db', 'node_modules/ws/index.js', 'dist/src/node.js', 'test/deploy/compose-spec.test.ts', 'bench/run.ts', '.git/config', 'compose.yaml', 'deploy/certs/tls.key']) {
    assert.equal(isIgnored(ignore, p), true, `${p} is left out`);
  }
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'bin/zenconn.js', 'src/node.ts', 'public/index.html', 'admin/index.html', 'deploy/healthcheck.js', 'scripts/build-client.js']) {
    assert.equal(isIgnored(ignore, p), false, `${p} is in`);
  }
  assert.deepEqual(readdirSync(context).sort(), ['admin', 'bin', 'deploy', 'package-lock.json', 'package.json', 'public', 'scripts', 'src', 'tsconfig.json']);
  assert.deepEqual(readdirSync(join(context, 'scripts')), ['build-client.js'], 'of scripts/, only the client bundle build');
});

test("the Dockerfile's build steps run natively: npm ci with native builds, tsc, prune to production dependencies", { timeout: BUILD_TIMEOUT_MS + 10_000 }, async (t) => {
  const df = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  image = imageConfig(df);
  reports = await buildNatively(df, {
    context,
    root: join(scratch, 'stages'),
    // System packages: the build stage's compilers (python3, make, g++) are on this machine.
    skipRun: (cmd) => (/^apt-get\b/.test(cmd) ? 'installs system packages (apt-get); this machine has them' : null),
    env: { ...process.env, npm_config_update_notifier: 'false' },
    runTimeoutMs: BUILD_TIMEOUT_MS,
    standInUser: STAND_IN
  });
  if (STAND_IN === null) t.diagnostic('not root: the image runs as the test user, and COPY --chown is not applied');
  app = join(stageRoot({ root: join(scratch, 'stages') }, 'runtime'), image.workdir);
  built = true;
  for (const r of reports) t.diagnostic(`${r.stage} line ${r.line}: ${r.skipped !== null ? `not run: ${r.skipped}` : r.applied ? `ran (${r.ms} ms)` : 'image config'}: ${r.instruction}`);
  const skipped = reports.filter((r) => r.skipped !== null);
  // Only what cannot be done without root or a package manager is left out.
  for (const r of skipped) assert.match(r.skipped!, STAND_IN ? /apt-get/ : /apt-get|--chown|needs root/, `${r.instruction}: ${r.skipped}`);
  const ran = reports.filter((r) => r.instruction.startsWith('RUN') && r.skipped === null).map((r) => r.instruction);
  assert.ok(ran.some((i) => i.includes('npm ci')) && ran.some((i) => i.includes('npm prune --omit=dev')), ran.join('\n'));
});

test('the image holds the runtime and production dependencies only', () => {
  assert.ok(built, 'the build ran');
  assert.deepEqual(readdirSync(app).sort(), ['admin', 'bin', 'data', 'deploy', 'dist', 'node_modules', 'package.json', 'public']);
  assert.deepEqual(readdirSync(join(app, 'dist')), ['src']);
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(app, 'node_modules', dep, 'package.json')), `dependency ${dep} is there`);
  for (const dep of Object.keys(pkg.devDependencies)) assert.equal(existsSync(join(app, 'node_modules', dep)), false, `devDependency ${dep} is pruned`);
  assert.ok(existsSync(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')), 'the native SQLite module');
  assert.equal(existsSync(join(app, 'node_modules', 'better-sqlite3', 'deps')), false, "better-sqlite3's sources are trimmed");
  if (STAND_IN) {
    assert.equal(statSync(join(app, 'data')).uid, STAND_IN.uid, 'data/ belongs to the image user');
    assert.equal(statSync(join(app, 'dist')).uid, 0, 'the application stays root-owned');
  }
});

test('zenconn --version from the image', async () => {
  assert.ok(built, 'the build ran');
  const r = await runContainer({ image, appDir: app, command: ['--version'], timeoutMs: 20_000, user: STAND_IN });
  assert.equal(r.code, 0, r.stderr);
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(r.stdout.trim(), version);
});

/** Starts the image with `command`, waits for /healthz, runs the HEALTHCHECK, stops it with SIGTERM. */
async function startAndCheck(command: string[] | undefined, hint: string): Promise<void> {
  const port = await freePort();
  // As `docker run -p PORT:PORT -e ZENCONN_PORT=PORT` would, on loopback only.
  const env = { ZENCONN_PORT: String(port), ZENCONN_HOST: '127.0.0.1' };
  const c = startContainer(command === undefined ? { image, appDir: app, env, user: STAND_IN } : { image, appDir: app, command, env, user: STAND_IN });
  try {
    await waitForHttp(port, '/healthz', c, 30_000, hint);
    const body = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { status: string };
    assert.equal(body.status, 'ok');
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200, 'the console is served from /app/public');
    assert.match(await page.text(), /<html/i);
    const lib = await fetch(`http://127.0.0.1:${port}/zenconn/client.js`);
    assert.equal(lib.status, 200, 'the client library bundle (built by npm run build) is served');
    assert.match(await lib.text(), /export\s*\{/);
    const hc = await runHealthcheck(image, app, env, STAND_IN);
    assert.equal(hc.code, 0, `HEALTHCHECK: ${hc.output}`);
  } finally {
    assert.equal(await c.stop(15_000), 0, `stopped with SIGTERM: ${c.stderr().slice(-2000)}`);
  }
  // The default database is SQLite in /app/data, the image's volume.
  assert.ok(existsSync(join(app, 'data', 'zenconn.db')), 'the SQLite database is in data/');
  if (STAND_IN) assert.equal(statSync(join(app, 'data', 'zenconn.db')).uid, STAND_IN.uid, 'written by the image user');
}

test('zenconn serve from the image answers /healthz, serves the console, passes the HEALTHCHECK', async () => {
  assert.ok(built, 'the build ran');
  await startAndCheck(['serve'], '');
});

test("the image's default command (agent) answers /healthz and passes the HEALTHCHECK", async () => {
  assert.ok(built, 'the build ran');
  await startAndCheck(undefined, MISSING_AGENT);
});

test('the HEALTHCHECK fails when nothing answers', async () => {
  assert.ok(built, 'the build ran');
  const hc = await runHealthcheck(image, app, { ZENCONN_PORT: String(await freePort()) }, STAND_IN);
  assert.equal(hc.code, 1);
  assert.match(hc.output, /healthcheck: .*ECONNREFUSED/);
});
