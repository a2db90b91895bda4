import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ZenNode } from '../node.js';
import type { HubObserver } from '../channels/hub.js';
import { IpcBus } from './ipc-bus.js';
import { TokenVerifier } from '../auth/tokens.js';
import type { Session } from '../session/session.js';
import { createLogger } from '../log.js';
import { AgentLink } from './agent-link.js';
import { workerPresence } from './worker-presence.js';
import { HANDOFF_SETTLE_MS, SYNC_TIMEOUT_MS } from './ipc-port.js';
import { SharedAccept, workerShare } from './shared-accept.js';
import { registerAgentRoutes } from './agent-api.js';
import { registerAdminRoutes } from './admin-api.js';
import { closeByOperator } from './self-admin.js';
import { StatsCollector } from './stats.js';
import type { AgentItem } from './ipc-messages.js';
import { metricsRoute, type Scrape } from '../metrics/metrics-http.js';

/** How long a stopping worker waits for its last IPC batch to be written before it exits. */
const LAST_WORDS_MS = 1000;

/**
 * The main of a worker process (forked by the agent with an IPC channel):
 *
 * 1. waits for the agent's `init` (the agent's resolved config, its slot, the agent's id);
 * 2. builds a ZenNode with role `worker`, `parent_id` = the agent, an `IpcBus`, and an
 *    observer that reports session opens/closes and (un)subscriptions to the agent;
 *    it listens only on its direct port (`workerPorts + slot`) when one is set;
 * 3. says `hello` (its server id) at once, `stats` every `statsIntervalMs` (the agent's
 *    heartbeat watchdog listens for them), `ready` once the node is started;
 * 4. takes the connections the agent hands over (`acceptConnection`), reporting each one
 *    `settled` once it carried a plain request, opened a session or closed (placement
 *    counts it as load until then); under `--accept shared` it also listens on the
 *    agent's port once the agent says `listen` (shared-accept.ts);
 * 5. stops (sessions closed with 1001, rows written, exit 0) on the agent's `drain`, on
 *    SIGTERM, or when the IPC channel closes: a worker never outlives its agent.
 */
export async function runWorker(): Promise<void> {
  const link = new AgentLink(process);
  // Before init there is nothing to drain: an agent that vanished this early leaves nothing behind.
  const early = (): never => process.exit(0);
  process.once('disconnect', early);
  const init = await link.init();
  const { config, slot, parentId } = init;
  const logger = createLogger(config.logLevel, { role: 'worker', slot });
  // With --bus, messages also go to the agent, the Redis node of all its workers.
  const bus = new IpcBus(link, config.bus !== null, logger);
  link.onPeer((key, socket) => bus.addPeer(key, socket));
  const stats = new StatsCollector();
  // Handed-over sockets count as load for the agent's placement until they are settled:
  // at their first plain request, when a session opens (right after the `open` item, in
  // the same batch, so the agent never sees the load dip), or when they close.
  // A session's settle rides its `open` (registry items wait REGISTRY_COALESCE_MS, the
  // agent counts the socket as load meanwhile); a plain request's or a closed socket's
  // goes at once: the place it frees under --max-connections is free for the next one.
  const pendingConns = new WeakMap<Socket, (prompt: boolean) => void>();
  const upgrading = new Set<(prompt: boolean) => void>();
  const observer: HubObserver<Session> = {
    sessionOpened: (s) => {
      link.send({
        t: 'open',
        session: { id: s.id, remoteAddr: s.init.remoteAddr, user: s.userId, protocol: s.protocol, connectedAt: s.connectedAtMs }
      });
      // Which upgrading socket it was does not matter for the count: each settles once.
      for (const settle of upgrading) {
        settle(false);
        break;
      }
    },
    sessionClosed: (s, code) => {
      stats.sessionClosed(s);
      link.send({ t: 'close', session: s.id, code });
    },
    subscribed: (s, channel) => link.send({ t: 'sub', session: s.id, channel }),
    unsubscribed: (s, channel) => link.send({ t: 'unsub', session: s.id, channel })
  };
  // --accept shared: each worker's cap is its share of the agent-wide one (shared-accept.ts).
  const share = config.accept === 'shared' ? workerShare(config.maxConnections, config.workers, slot) : null;
  const node = new ZenNode({
    config: share === null ? config : { ...config, maxConnections: share },
    logger,
    role: 'worker',
    parentId,
    bus,
    observer,
    listen: false,
    port: config.workerPorts === null ? undefined : config.workerPorts + slot,
    presence: workerPresence((query) => link.request(query))
  });
  link.send({ t: 'hello', serverId: node.serverId, pid: process.pid });
  // --accept shared: the agent says `listen` (with its bound socket) once this worker is ready.
  const shared =
    config.accept === 'shared'
      ? new SharedAccept({
          share: share ?? 0,
          backlog: config.listenBacklog,
          open: () => node.admission.connections,
          accept: (socket) => node.acceptConnection(socket),
          forward: (socket) => link.forward(socket),
          onError: (err) => logger.error({ err }, 'the shared port failed')
        })
      : null;
  let started = false;
  const heartbeat = setInterval(() => link.send({ t: 'stats', stats: stats.sample(started ? node.hub : null, bus.peerCount, started ? node.admission.refused : {}, bus.undeliverable, shared?.forwarded ?? 0) }), init.statsIntervalMs);

  let stopping = false;
  // Without a direct port the worker is reached on the agent's port, which a worker
  // started with the agent learns only after the agent bound it.
  let agentPort = init.agentPort;
  const recordAgentPort = async (): Promise<void> => {
    if (!started || stopping || config.workerPorts !== null || agentPort === null || agentPort === config.port) return;
    await node.setReachablePort(agentPort).catch((err: unknown) => logger.error({ err }, 'could not record the address'));
  };
  const stop = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'worker stopping');
    // The heartbeat goes on while draining: a drain that hangs is still the watchdog's to end.
    const force = setTimeout(() => {
      logger.error('graceful stop took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    const done = (code: number): void => {
      clearInterval(heartbeat);
      stats.close();
      link.close();
      void lastWords(link, bus).then(() => process.exit(code));
    };
    if (!started) return done(0);
    // No new connection lands here; those taken a moment ago make their request first.
    shared?.close();
    const settledHere = shared?.whenSettled(HANDOFF_SETTLE_MS) ?? Promise.resolve();
    settledHere.then(() => node.stop()).then(
      () => done(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        done(1);
      }
    );
  };
  process.off('disconnect', early);
  process.on('disconnect', () => stop('agent gone'));
  process.on('SIGTERM', () => {
    link.send({ t: 'stopping', reason: 'SIGTERM' });
    stop('SIGTERM');
  });
  // The agent decides about the process group's Ctrl-C and hangups.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.on('SIGUSR1', () => node.reopenLogs());

  link.onItem((item: AgentItem) => {
    switch (item.t) {
      case 'deliver':
        bus.receive(item.payload, item.offset, item.epoch);
        return;
      case 'remote':
        bus.setRemoteCount(item.channel, item.count);
        return;
      case 'bus-ready':
        bus.setNodesReady(item.ready);
        return;
      case 'peer-gone':
        bus.peerGone(item.key);
        return;
      case 'release-port':
        if (node.server?.listening) node.server.close();
        link.send({ t: 'released' });
        return;
      case 'agent-port':
        agentPort = item.port;
        void recordAgentPort();
        return;
      case 'drain':
        stop('agent asked');
        return;
      case 'close-session':
        if (started) closeByOperator(node, item.session);
        return;
      case 'metrics-ask':
        // Not started yet: no answer, and the agent's scrape shows this worker down.
        if (started) void node.metrics.json().then((metrics) => link.send({ t: 'metrics', id: item.id, metrics }));
        return;
      case 'response':
        return;
    }
  });

  // The raw socket behind a request (a TLS socket wraps the handed-over one).
  const rawSocket = (req: IncomingMessage): Socket => ((req.socket as { _parent?: Socket })._parent ?? req.socket) as Socket;
  const onRequest = (req: IncomingMessage): void => {
    const socket = rawSocket(req);
    shared?.settled(socket);
    pendingConns.get(socket)?.(true);
  };
  const onUpgrade = (req: IncomingMessage): void => {
    const socket = rawSocket(req);
    shared?.settled(socket);
    const settle = pendingConns.get(socket);
    if (settle === undefined) return;
    pendingConns.delete(socket);
    upgrading.add(settle);
  };
  link.onConnection((conn, socket) => {
    let settled = false;
    const onClose = (): void => settle(true);
    const settle = (prompt: boolean): void => {
      if (settled) return;
      settled = true;
      pendingConns.delete(socket);
      upgrading.delete(settle);
      // Once settled, nothing here is needed for the socket's life: no listener keeps these closures (#15).
      socket.removeListener('close', onClose);
      link.send({ t: 'settled', conn }, prompt ? 'prompt' : 'registry');
    };
    pendingConns.set(socket, settle);
    socket.once('close', onClose);
    if (stopping || !started) {
      socket.destroy();
      return;
    }
    node.acceptConnection(socket);
  });

  link.onListen((handle) => {
    if (started && !stopping) shared?.listen(handle, () => link.send({ t: 'listening' }));
  });

  // Every worker alive says what it has members of before this one takes a connection.
  if (!(await bus.whenPeersReady(init.peers, SYNC_TIMEOUT_MS))) logger.error({ peers: init.peers }, 'a link to another worker did not come up; messages to it are lost');
  let address;
  try {
    address = await node.start();
  } catch (err) {
    logger.fatal({ err }, 'worker could not start');
    await lastWords(link, bus);
    process.exit(1);
  }
  started = true;
  node.server.on('request', onRequest);
  node.server.on('upgrade', onUpgrade);
  const verifier = new TokenVerifier({ secret: config.jwtSecret, publicKeyFile: config.jwtPublicKey });
  registerAgentRoutes(node.router, verifier, (query) => link.request(query), (req, err, userId) => node.recordRefusedRequest(req, err, userId));
  registerAdminRoutes(node.router, { verifier, store: node.store, staleServerMs: config.staleServerMs, ask: (query) => link.request({ kind: 'admin', query }), onRefused: (req, err, userId) => node.recordRefusedRequest(req, err, userId) });
  // GET /metrics here is the whole agent's: the agent asks every worker.
  node.router.add(
    'GET',
    '/metrics',
    metricsRoute(
      verifier,
      async () => {
        const a = await link.request({ kind: 'metrics' });
        if (a.status !== 200) throw new Error((a.body as { error?: string }).error ?? `agent answered ${a.status}`);
        return a.body as Scrape;
      },
      (req, err, userId) => node.recordRefusedRequest(req, err, userId)
    )
  );
  await recordAgentPort();
  if (stopping) return;
  link.send({ t: 'ready', port: address?.port ?? null });
  link.send({ t: 'stats', stats: stats.sample(node.hub, bus.peerCount, node.admission.refused, bus.undeliverable, shared?.forwarded ?? 0) });
  logger.info({ directPort: address?.port ?? null }, 'worker ready');
}

/** Writes what is queued and waits (briefly) until the pipe took it. */
async function lastWords(link: AgentLink, bus: IpcBus): Promise<void> {
  link.flush();
  bus.flushPeers();
  const until = Date.now() + LAST_WORDS_MS;
  while ((link.unsentBatches > 0 || bus.unsentToPeers > 0) && link.connected && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
}
