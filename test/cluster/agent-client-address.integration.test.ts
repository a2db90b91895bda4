import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers/client.js';
import { startAgent } from './cluster-helpers.js';
import { waitFor } from '../helpers/wait.js';

test('under an agent with --trust-proxy loopback, a spoofed leftmost X-Forwarded-For does not reach /agent/sessions', async () => {
  const agent = await startAgent(['--workers', '1', '--trust-proxy', 'loopback']);
  let client: TestClient | null = null;
  try {
    client = await TestClient.connect(agent.port, { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' } });
    const id = client.sessionId;
    let remoteAddr: string | undefined;
    await waitFor('the session in /agent/sessions', async () => {
      remoteAddr = (await agent.sessions()).find((s) => s.id === id)?.remoteAddr;
      return remoteAddr !== undefined;
    });
    assert.equal(remoteAddr, '203.0.113.7');
  } finally {
    client?.ws.terminate();
    await agent.cleanup();
  }
});
