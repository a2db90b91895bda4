/**
 * compose.yaml, .env.example and the Dockerfile, checked without Docker: compose.yaml
 * against the Compose specification's JSON schema (test/deploy/compose-spec.schema.json,
 * see its README), before and after interpolation, and the properties the deployment
 * promises (services, profiles, health checks, scaling, limits, every variable listed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { ROOT } from '../helpers/process.js';
import { OPTIONS, envName } from '../../src/config/options.js';
import {
  MissingVariableError,
  buildContext,
  interpolate,
  interpolateDocument,
  parseDotenv,
  readComposeFile,
  referencedVariables,
  requiredVariables,
  serviceEnvironment,
  type ComposeFile
} from './compose-file.js';
import { imageConfig, parseDockerfile } from './dockerfile.js';

function validator(): ValidateFunction {
  const schema = JSON.parse(readFileSync(join(ROOT, 'test', 'deploy', 'compose-spec.schema.json'), 'utf8')) as Record<string, unknown>;
  // The file names draft-07 by an https URL without "#", which ajv does not look up; it is draft-07.
  delete schema.$schema;
  // strict: false — the schema uses annotations outside draft-07 (`deprecated`).
  return new Ajv({ allErrors: true, strict: false }).compile(schema);
}

function explain(validate: ValidateFunction): string {
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('\n');
}

const raw = readComposeFile();
const dotenvText = readFileSync(join(ROOT, '.env.example'), 'utf8');

/** .env.example as a user fills it: their own password set. */
function filledDotenv(): Map<string, string> {
  const vars = parseDotenv(dotenvText, '.env.example');
  vars.set('POSTGRES_PASSWORD', 'secret123');
  return vars;
}

const compose = interpolateDocument(raw as ComposeFile, filledDotenv());
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const image = imageConfig(dockerfile);

test('compose.yaml follows the Compose specification schema, as written and once interpolated', () => {
  const validate = validator();
  assert.ok(validate(raw), explain(validate));
  assert.ok(validate(compose), explain(validate));
});

test('the schema check is not vacuous: an unknown service key and a malformed port are rejected', () => {
  const validate = validator();
  const bad = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
  bad.services.zenconn!.restart_policy = 'always';
  bad.services.proxy!.ports = [{ target: 'eighty', published: [8080] }];
  assert.equal(validate(bad), false);
  const text = explain(validate);
  assert.match(text, /must NOT have additional properties.*restart_policy/);
  assert.match(text, /\/services\/proxy\/ports\/0/);
});

test('.env.example lists every variable compose.yaml reads, and every zenconn option', () => {
  const listed = new Set<string>();
  for (const line of dotenvText.split('\n')) {
    const m = /^#?\s*([A-Z][A-Z0-9_]*)=/.exec(line.trim());
    if (m) listed.add(m[1]!);
  }
  const referenced = referencedVariables(raw);
  assert.deepEqual([...referenced].filter((v) => !listed.has(v)), [], 'variables compose.yaml reads but .env.example does not list');

  const options = new Set(Object.keys(OPTIONS).map(envName));
  const zenEnv = compose.services.zenconn!.environment as Record<string, string>;
  const missing = [...options].filter((o) => !listed.has(o) && !(o in zenEnv));
  assert.deepEqual(missing, [], 'zenconn options neither in .env.example nor set by compose.yaml (add them to .env.example)');
  const unknown = [...listed].filter((v) => v.startsWith('ZENCONN_') && !options.has(v));
  assert.deepEqual(unknown, [], '.env.example names ZENCONN_ variables that are not options');
  const stray = [...listed].filter((v) => !v.startsWith('ZENCONN_') && !v.startsWith('COMPOSE_') && !referenced.has(v));
  assert.deepEqual(stray, [], '.env.example lists variables nothing reads');
  for (const o of Object.keys(zenEnv)) assert.ok(!parseDotenv(dotenvText).has(o), `${o} is set by compose.yaml; .env.example must not set it too`);
});

test('no variable is required: a fresh clone (no .env) and the untouched .env.example both interpolate, with the default password', () => {
  assert.deepEqual(requiredVariables(raw), [], 'compose.yaml must not require a variable (${VAR:?…} or ${VAR?…}): give it a default');
  // The check is not vacuous: both forms, nested in a default too, are found.
  assert.deepEqual(requiredVariables({ a: ['${X:?set X}', '$${Y?}', 'p${Z-${W?w}}'] }), ['X:?', 'W?']);
  assert.equal(parseDotenv(dotenvText).get('POSTGRES_PASSWORD'), '', '.env.example leaves the password to the default');
  for (const [what, vars] of [['no .env', new Map<string, string>()], ['.env.example as it is', parseDotenv(dotenvText)]] as const) {
    const doc = interpolateDocument(raw as ComposeFile, vars);
    const env = serviceEnvironment(doc.services.zenconn!, new Map(), vars);
    assert.equal(env.get('ZENCONN_DATABASE'), 'postgres://zenconn:zenconn@postgres:5432/zenconn', what);
    assert.equal((doc.services.postgres!.environment as Record<string, string>).POSTGRES_PASSWORD, 'zenconn', what);
  }
  // The interpolation itself, on the forms compose.yaml uses, and a required one refused.
  const vars = new Map([['A', 'x'], ['E', '']]);
  assert.equal(interpolate('${A:-d}/${E:-d}/${U:-d}/${E-d}/$$A/$A', vars), 'x/d/d//$A/x');
  assert.throws(() => interpolate('${E:?set E}', vars), (err: unknown) => err instanceof MissingVariableError && err.message === 'E: set E');
});

test('zenconn: the agent, PostgreSQL and Redis by service name, after both are healthy, behind the proxies only', () => {
  const zen = compose.services.zenconn!;
  assert.equal(buildContext(zen), '.');
  assert.deepEqual(zen.command, ['agent']);
  const env = serviceEnvironment(zen, filledDotenv(), filledDotenv());
  assert.match(env.get('ZENCONN_DATABASE')!, /^postgres:\/\/zenconn:secret123@postgres:5432\/zenconn$/);
  assert.equal(env.get('ZENCONN_BUS'), 'redis://redis:6379/0');
  // X-Forwarded-For is trusted only from the proxies' own network, and they are only on it.
  const edge = (compose as unknown as { networks: Record<string, { ipam: { config: Array<{ subnet: string }> } }> }).networks.edge!;
  assert.equal(edge.ipam.config[0]!.subnet, '172.30.250.0/24');
  assert.equal(env.get('ZENCONN_TRUST_PROXY'), '172.30.250.0/24');
  const networksOf = (name: string): unknown => (compose.services[name] as unknown as { networks?: unknown }).networks;
  assert.deepEqual(networksOf('zenconn'), ['default', 'edge']);
  assert.deepEqual(networksOf('proxy'), ['edge']);
  assert.deepEqual(networksOf('tls'), ['edge']);
  assert.equal(env.get('ZENCONN_JWT_SECRET'), '', 'secrets come from .env (empty = unset)');
  assert.deepEqual(zen.depends_on, { postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
  // No published port: `--scale zenconn=N` would collide on it. The proxies publish.
  assert.equal(zen.ports, undefined);
  assert.deepEqual(compose.services.proxy!.ports, ['8080:80']);
  assert.deepEqual(compose.services.proxy!.depends_on, { zenconn: { condition: 'service_healthy' } });
  assert.equal(compose.services.proxy!.profiles, undefined, 'the HTTP proxy runs in a plain `docker compose up`');
  const published = Object.entries(compose.services).filter(([, s]) => s.ports !== undefined).map(([n]) => n).sort();
  assert.deepEqual(published, ['proxy', 'tls']);
});

test('zenconn: open files raised, the image health check, a stop grace period above the drain deadline', () => {
  const zen = compose.services.zenconn!;
  assert.deepEqual(zen.ulimits, { nofile: { soft: '1048576', hard: '1048576' } });
  for (const name of ['proxy', 'tls']) assert.deepEqual(compose.services[name]!.ulimits, zen.ulimits, `${name} ulimits`);
  assert.deepEqual(zen.healthcheck!.test, ['CMD', ...image.healthcheck!.test], "compose's health check is the image's");
  const grace = Number(/^(\d+)s$/.exec(String(zen.stop_grace_period))?.[1]) * 1000;
  assert.ok(grace > (OPTIONS.shutdownTimeoutMs.default as number), 'stop_grace_period exceeds the default shutdownTimeoutMs');
});

test('postgres keeps its data in a volume and has a health check; redis has one too', () => {
  const pg = compose.services.postgres!;
  assert.ok(pg.volumes!.includes('pgdata:/var/lib/postgresql/data'));
  assert.ok(compose.volumes && 'pgdata' in compose.volumes);
  assert.match(String((pg.healthcheck!.test as string[])[1]), /pg_isready -h 127\.0\.0\.1/);
  assert.deepEqual(compose.services.redis!.healthcheck!.test, ['CMD', 'redis-cli', 'ping']);
  // The password reaches PostgreSQL and zenconn from the same .env entry.
  assert.equal((pg.environment as Record<string, string>).POSTGRES_PASSWORD, 'secret123');
});

test('the tls profile: nginx on 443, published as 8443, with a mounted certificate folder and a volume for the self-signed one', () => {
  const tls = compose.services.tls!;
  assert.deepEqual(tls.profiles, ['tls']);
  assert.deepEqual(tls.ports, ['8443:443']);
  assert.equal(buildContext(tls), 'deploy/nginx');
  assert.equal((tls.environment as Record<string, string>).PROXY_MODE, 'tls');
  assert.deepEqual(tls.volumes, ['./deploy/certs:/etc/zenconn-proxy/certs:ro', 'proxy-tls:/var/lib/zenconn-proxy']);
  const script = readFileSync(join(ROOT, 'deploy', 'nginx', '40-zenconn-proxy.sh'), 'utf8');
  assert.ok(script.includes('mount_dir=${PROXY_TLS_MOUNT_DIR:-/etc/zenconn-proxy/certs}'));
  assert.ok(script.includes('state_dir=${PROXY_TLS_STATE_DIR:-/var/lib/zenconn-proxy}'));
});

test('the proxies forward WebSocket upgrades to zenconn:8080, re-resolving the name so scaled replicas all take connections', () => {
  const location = readFileSync(join(ROOT, 'deploy', 'nginx', 'zenconn-location.conf'), 'utf8');
  const nginx = readFileSync(join(ROOT, 'deploy', 'nginx', 'nginx.conf'), 'utf8');
  const env = serviceEnvironment(compose.services.zenconn!, filledDotenv(), filledDotenv());
  assert.match(location, new RegExp(`set \\$zenconn_upstream http://zenconn:${env.get('ZENCONN_PORT')};`));
  assert.match(location, /proxy_pass \$zenconn_upstream;/);
  assert.match(location, /proxy_set_header Upgrade \$http_upgrade;/);
  assert.match(location, /proxy_set_header Connection \$connection_upgrade;/);
  assert.match(location, /proxy_read_timeout (\d+)s;/);
  const readTimeout = Number(/proxy_read_timeout (\d+)s;/.exec(location)![1]) * 1000;
  assert.ok(readTimeout > (OPTIONS.idleTimeoutMs.default as number), 'the proxy outwaits zenconn idle timeout');
  assert.match(nginx, /resolver 127\.0\.0\.11 valid=\d+s/);
  assert.match(nginx, /map \$http_upgrade \$connection_upgrade/);
});

test('Dockerfile: multi-stage on a glibc Node.js LTS, production dependencies only, non-root, HEALTHCHECK on /healthz, agent by default', () => {
  assert.deepEqual(dockerfile.stages.map((s) => s.name), ['build', 'runtime']);
  const from = image.from;
  const m = /^node:(\d+)-(bookworm|trixie)-slim$/.exec(from);
  assert.ok(m, `a glibc (Debian) slim Node.js image, not ${from}`);
  assert.ok(Number(m[1]) >= 22 && Number(m[1]) % 2 === 0, `an LTS line (even, 22 or later): ${from}`);
  assert.equal(imageConfig(dockerfile, 'build').from, from, 'both stages on the same Node.js (native modules built for it)');
  const build = dockerfile.stages[0]!.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.text).join('\n');
  assert.match(build, /apt-get install -y --no-install-recommends python3 make g\+\+/);
  assert.match(build, /npm prune --omit=dev/);
  const runtimeRuns = dockerfile.stages[1]!.instructions.filter((i) => i.keyword === 'RUN');
  assert.deepEqual(runtimeRuns, [], 'the runtime stage installs nothing: no compilers there');
  assert.equal(image.user, 'node');
  assert.equal(image.env.get('NODE_ENV'), 'production');
  assert.deepEqual(image.entrypoint, ['node', '/app/bin/zenconn.js']);
  assert.deepEqual(image.cmd, ['agent']);
  assert.deepEqual(image.volumes, ['/app/data']);
  assert.deepEqual(image.healthcheck!.test, ['node', '/app/deploy/healthcheck.js']);
  assert.match(readFileSync(join(ROOT, 'deploy', 'healthcheck.js'), 'utf8'), /path: '\/healthz'/);
});
