import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runZen } from '../helpers/process.js';
import { makeToken } from '../helpers/tokens.js';
import { startServer } from '../helpers/server.js';
import { rawRequest } from '../http/raw-request.js';
import { admin, httpGet, sqliteRows, startAgent } from './cluster-helpers.js';

/** Forms of a path that URL resolution turns into `path` (but are not it). */
function variants(path: string): string[] {
  return [`//x${path}`, `/\\x${path}`, `/x/..${path}`, `/.${path}`];
}

describe('the admin surfaces of the agent', () => {
  test('/agent/* needs the admin grant; only the exact raw path is the route', async () => {
    const agent = await startAgent(['--workers', '1']);
    try {
      assert.equal((await httpGet(agent.port, '/agent/workers')).status, 401);
      assert.equal((await httpGet(agent.port, '/agent/workers', { authorization: `Bearer ${await makeToken('x', ['publish'])}` })).status, 403);
      const ok = await httpGet(agent.port, '/agent/workers', { authorization: `Bearer ${await admin()}` });
      assert.equal(ok.status, 200);
      assert.ok(Array.isArray((JSON.parse(ok.body) as { workers: unknown[] }).workers));
      // With an admin token, to show the path alone decides: none of these is the route.
      for (const target of variants('/agent/workers')) {
        const res = await rawRequest(agent.port, 'GET', target, [`Authorization: Bearer ${await admin()}`]);
        assert.ok([400, 403, 404].includes(res.status), `${target} answered ${res.status}: ${res.body.toString()}`);
        assert.doesNotMatch(res.body.toString(), /"workers"/, target);
      }
      // Started with --port 0, the agent's row has the port it is bound to.
      assert.equal(sqliteRows(agent.database).servers.find((r) => r.role === 'agent')!.address, `http://127.0.0.1:${agent.port}`);
    } finally {
      await agent.cleanup();
    }
  });

  test('serve: only the exact raw path is the route', async () => {
    const s = await startServer();
    try {
      assert.equal((await rawRequest(s.port, 'GET', '/healthz')).status, 200);
      for (const target of variants('/healthz')) {
        const res = await rawRequest(s.port, 'GET', target);
        assert.ok([400, 403, 404].includes(res.status), `${target} answered ${res.status}: ${res.body.toString()}`);
        assert.doesNotMatch(res.body.toString(), /"status"/, target);
      }
    } finally {
      await s.stop();
    }
  });

  test('zenconn status reaches the agent over its 0600 control socket without a token, or on its port with --token', async () => {
    const agent = await startAgent(['--workers', '1']);
    const socket = join(agent.dir, 'zenconn.sock');
    try {
      const st = lstatSync(socket);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600);
      // No --jwt-secret here: nothing to mint a token with, so the socket is the way in.
      const viaSocket = await runZen(['status', '--json', '--port', String(agent.port), '--host', '127.0.0.1', '--spool-dir', join(agent.dir, 'spool')]);
      assert.equal(viaSocket.code, 0, viaSocket.stderr);
      assert.equal((JSON.parse(viaSocket.stdout) as { workers: unknown[] }).workers.length, 1);
      // The socket off: on the port, only with a token.
      const off = ['status', '--json', '--port', String(agent.port), '--host', '127.0.0.1', '--control-socket', 'off'];
      const refused = await runZen(off);
      assert.notEqual(refused.code, 0);
      const viaTcp = await runZen([...off, '--token', await admin()]);
      assert.equal(viaTcp.code, 0, viaTcp.stderr);
      assert.equal((JSON.parse(viaTcp.stdout) as { workers: unknown[] }).workers.length, 1);
      assert.equal(await agent.zen.stop('SIGTERM'), 0);
      assert.equal(existsSync(socket), false, 'the socket file is removed on stop');
    } finally {
      await agent.cleanup();
    }
  });

  test('a stale control socket left by a killed process is replaced at start', async () => {
    const dir = join(tmpdir(), `zenconn-stale-${process.pid}-${Date.now()}`);
    const socket = join(dir, 'zenconn.sock');
    // A process that listens on the path and dies by SIGKILL leaves the file behind.
    const holder = spawn(process.execPath, ['-e', `require('fs').mkdirSync(${JSON.stringify(dir)},{recursive:true});require('net').createServer().listen(${JSON.stringify(socket)},()=>console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    assert.ok(lstatSync(socket).isSocket());
    const agent = await startAgent(['--workers', '1', '--control-socket', socket]);
    try {
      const r = await runZen(['status', '--json', '--control-socket', socket]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(lstatSync(socket).mode & 0o777, 0o600);
    } finally {
      await agent.cleanup();
    }
  });
});
