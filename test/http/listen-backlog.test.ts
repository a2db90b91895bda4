import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../../src/config/load.js';
import { startServer } from '../helpers/server.js';
import { startAgent } from '../cluster/cluster-helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `--listen-backlog`: the accept queue of the public port, as the kernel reports it (the
 * Send-Q of a listening socket in `ss -ltn` is its backlog), for serve and for an agent in
 * both accept modes (under `shared` the workers listen on the agent's socket).
 */
function backlogOf(port: number): number | null {
  const out = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim();
  if (out === '') return null;
  // State Recv-Q Send-Q Local Peer
  return Number(out.split('\n')[0]!.trim().split(/\s+/)[2]);
}

test('serve listens with --listen-backlog, and the default is 4096 (or the kernel cap below it)', async () => {
  const srv = await startServer({ 'listen-backlog': '7' });
  try {
    assert.equal(backlogOf(srv.port), 7);
  } finally {
    await srv.stop();
  }
  const plain = await startServer();
  try {
    const somaxconn = Number(execFileSync('sysctl', ['-n', 'net.core.somaxconn'], { encoding: 'utf8' }).trim());
    assert.equal(backlogOf(plain.port), Math.min(4096, somaxconn));
  } finally {
    await plain.stop();
  }
});

for (const accept of ['agent', 'shared']) {
  test(`an agent (--accept ${accept}) listens on its public port with --listen-backlog`, async () => {
    const agent = await startAgent(['--workers', '2', '--accept', accept, '--listen-backlog', '9']);
    try {
      let seen: number | null = null;
      await waitFor('the public port listening', () => (seen = backlogOf(agent.port)) !== null, 30_000, 50);
      assert.equal(seen, 9);
    } finally {
      await agent.cleanup();
    }
  });
}

test('--listen-backlog takes 1 to 65535 and refuses 0 and 65536 with a clear error', () => {
  assert.equal(loadConfig(new Map([['listen-backlog', '1']]), {}).listenBacklog, 1);
  assert.equal(loadConfig(new Map([['listen-backlog', '65535']]), {}).listenBacklog, 65535);
  assert.equal(loadConfig(new Map(), { ZENCONN_LISTEN_BACKLOG: '300' }).listenBacklog, 300);
  for (const bad of ['0', '65536', 'many']) {
    assert.throws(() => loadConfig(new Map([['listen-backlog', bad]]), {}), /listen-backlog/, bad);
  }
});
