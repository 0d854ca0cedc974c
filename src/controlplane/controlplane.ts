// The control plane that `k8s4ai up` runs: store, API server, controllers, demo fleet,
// tokens and kubeconfig. Tests start the very same thing on a free port.
import { mkdirSync, existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import { openStore } from '../store/index.ts';
import { ALL_KINDS } from '../api/kinds/index.ts';
import type { KubeObject } from '../api/meta.ts';
import { Registry, timestamp } from '../apiserver/registry.ts';
import { createApiServer, type ApiServer } from '../apiserver/server.ts';
import { TokenAuthenticator, addToken } from '../apiserver/auth.ts';
import { ApiError } from '../apiserver/errors.ts';
import { GarbageCollector } from '../controllers/garbagecollector.ts';
import { NamespaceController } from '../controllers/namespace.ts';
import { EventRecorder } from '../controllers/events.ts';
import { EventTTLController } from '../controllers/eventttl.ts';
import { loadFleet, expandFleet } from '../fleet/index.ts';
import { SchedulerController } from '../scheduler/controller/index.ts';
import { GangController } from '../controllers/gang/controller.ts';
import { NodeLifecycleController } from '../controllers/nodelifecycle.ts';
import { Agent } from '../agent/agent.ts';
import { ContentRouterController } from '../controllers/contentrouter.ts';
import { ApiClient } from '../client/client.ts';
import { readOrCreateSecret } from '../lib/secret.ts';
import { servingCertificates } from '../lib/pki.ts';
import { readKubeconfig, writeKubeconfig } from '../lib/kubeconfig.ts';
import { kubeconfigPath, tokensPath, databasePath, pkiDir, agentProxyTokenPath } from '../lib/paths.ts';

export interface ControlPlaneOptions {
  dataDir: string;
  port: number;
  address: string;
  /** Store URL; default: SQLite in the data dir. */
  storeUrl?: string;
  /**
   * Serve plain HTTP (loopback only). Off by default: kubectl sends bearer tokens only
   * over TLS, so `up` serves TLS with its own CA, which the kubeconfig carries.
   */
  insecureHttp?: boolean;
  /** Fleet file to register, or undefined for none. */
  fleetFile?: string;
  logger: Logger;
  /**
   * Run the gang scheduler (default true, as `up` does). Tests of the API alone turn it
   * off: there, gangs are plain objects and fixture Nodes are not capacity.
   */
  scheduler?: boolean;
  /**
   * Run the lifecycle controllers (gangs and checkpoints, node heartbeats). Default: as
   * the scheduler.
   */
  lifecycle?: boolean;
  /** Seconds without a heartbeat before a node is lost (default 40). */
  nodeGraceSeconds?: number;
  /**
   * Run an agent in this process for this machine (what `up` does): it registers the
   * machine as a Node (unless nodeName is null) and serves the simulated fleet nodes.
   */
  agent?: { nodeName?: string | null; serveSimulated?: boolean; heartbeatSeconds?: number; stateDir?: string; topologyDomain?: string };
  /** Run one `k8s4ai router` process per ContentRouter (what `up` does). */
  routers?: boolean;
}

export interface ControlPlane {
  url: string;
  kubeconfig: string;
  registry: Registry;
  store: Store;
  server: ApiServer;
  /** The gang scheduler, when it runs. */
  scheduler?: SchedulerController;
  gangs?: GangController;
  nodeLifecycle?: NodeLifecycleController;
  agent?: Agent;
  routers?: ContentRouterController;
  /** Objects the fleet registration created on this start (0 on a restart). */
  fleetCreated: number;
  fleetTotal: number;
  close(): Promise<void>;
}

const isLoopback = (address: string) => address === 'localhost' || address === '::1' || /^127\./.test(address);

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.logger;
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  // Read the fleet first: a bad fleet file stops `up` before anything is written.
  const fleetObjects = opts.fleetFile ? expandFleet(loadFleet(opts.fleetFile)) : [];

  const store = await openStore(opts.storeUrl ?? `sqlite://${databasePath(opts.dataDir)}`);
  const registry = new Registry(store, ALL_KINDS);
  await registry.bootstrap();

  if (opts.insecureHttp && !isLoopback(opts.address)) {
    throw new Error(`plain HTTP is allowed on loopback only; ${opts.address} is served with TLS (drop --insecure-http)`);
  }
  const tls = opts.insecureHttp ? undefined : servingCertificates(pkiDir(opts.dataDir), [opts.address].filter((a) => a !== '0.0.0.0' && a !== '::'));
  const agentProxyToken = readOrCreateSecret(agentProxyTokenPath(opts.dataDir));
  const server = createApiServer({
    registry,
    agentProxyToken,
    authenticator: new TokenAuthenticator(tokensPath(opts.dataDir)),
    logger: log,
    ...(tls ? { https: { key: tls.keyPem, cert: tls.certPem } } : {}),
  });
  await server.listen(opts.port, opts.address);
  const port = (server.app.server.address() as { port: number }).port;
  const host = opts.address === '0.0.0.0' || opts.address === '::' ? '127.0.0.1' : opts.address;
  const url = `${tls ? 'https' : 'http'}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;

  const kubeconfig = kubeconfigPath(opts.dataDir);
  const token = adminToken(opts.dataDir, kubeconfig);
  writeKubeconfig(kubeconfig, { server: url, token, caPem: tls?.caPem });

  const gc = new GarbageCollector(registry, log.child({ component: 'garbage-collector' }));
  const namespaces = new NamespaceController(registry, log.child({ component: 'namespace-controller' }));
  const eventTtl = new EventTTLController(registry, log.child({ component: 'event-ttl' }));
  await gc.start();
  await namespaces.start();
  eventTtl.start();

  const fleetCreated = await registerFleet(registry, fleetObjects, new EventRecorder(registry, 'k8s4ai-up'), log);
  // The scheduler starts once the fleet is registered, so its first sync sees the whole
  // cluster; its metrics join the API server's /metrics.
  let scheduler: SchedulerController | undefined;
  if (opts.scheduler ?? true) {
    scheduler = new SchedulerController({ registry, log: log.child({ component: 'scheduler' }), metrics: server.metrics });
    await scheduler.start();
  }
  let gangs: GangController | undefined;
  let nodeLifecycle: NodeLifecycleController | undefined;
  if (opts.lifecycle ?? opts.scheduler ?? true) {
    gangs = new GangController(registry, log.child({ component: 'gang-controller' }));
    await gangs.start();
    nodeLifecycle = new NodeLifecycleController(registry, log.child({ component: 'node-lifecycle' }), { graceSeconds: opts.nodeGraceSeconds });
    await nodeLifecycle.start();
  }
  let agent: Agent | undefined;
  if (opts.agent) {
    // The agent talks to the API server over HTTP like any other: the same code as `k8s4ai agent`.
    agent = new Agent({
      client: ApiClient.fromKubeconfig(kubeconfig),
      logger: log.child({ component: 'agent' }),
      stateDir: opts.agent.stateDir ?? join(opts.dataDir, 'agent'),
      nodeName: opts.agent.nodeName === null ? undefined : (opts.agent.nodeName ?? hostname()),
      topologyDomain: opts.agent.topologyDomain,
      serveSimulated: opts.agent.serveSimulated ?? true,
      heartbeatSeconds: opts.agent.heartbeatSeconds,
      proxyToken: agentProxyToken,
    });
    await agent.start();
  }
  let routers: ContentRouterController | undefined;
  if (opts.routers) {
    routers = new ContentRouterController(registry, log.child({ component: 'content-routers' }), { kubeconfig, logDir: join(opts.dataDir, 'routers') });
    await routers.start();
  }
  log.info({ url, dataDir: opts.dataDir, store: store.name, fleetCreated }, 'control plane started');

  return {
    url,
    kubeconfig,
    registry,
    store,
    server,
    scheduler,
    gangs,
    nodeLifecycle,
    agent,
    routers,
    fleetCreated,
    fleetTotal: fleetObjects.length,
    async close() {
      await routers?.stop();
      await agent?.stop();
      nodeLifecycle?.stop();
      gangs?.stop();
      await scheduler?.stop();
      gc.stop();
      namespaces.stop();
      eventTtl.stop();
      await server.close();
      registry.close();
      await store.close();
      log.info('control plane stopped');
    },
  };
}

/** The admin token in the existing kubeconfig if it is still valid, else a new one. */
function adminToken(dataDir: string, kubeconfig: string): string {
  if (existsSync(kubeconfig)) {
    try {
      const token = readKubeconfig(kubeconfig).token;
      if (token) {
        new TokenAuthenticator(tokensPath(dataDir)).authenticate(`Bearer ${token}`);
        return token;
      }
    } catch {
      // unreadable or revoked: issue a fresh admin token below
    }
  }
  return addToken(tokensPath(dataDir), 'admin', ['*']);
}

/**
 * Registers the fleet's objects that do not exist yet. Existing objects are left as they
 * are, so a restart finds every object as it was, edits included.
 */
async function registerFleet(registry: Registry, objects: KubeObject[], events: EventRecorder, log: Logger): Promise<number> {
  let created = 0;
  for (const obj of objects) {
    const def = registry.findByKind(obj.apiVersion, obj.kind);
    if (!def) throw new Error(`fleet: unknown kind ${obj.apiVersion}/${obj.kind}`);
    try {
      // The fleet file is timeless; the conditions it declares start holding now.
      const now = timestamp();
      const status = obj.status as { conditions?: { lastTransitionTime?: string }[] } | undefined;
      for (const c of status?.conditions ?? []) c.lastTransitionTime ??= now;
      const stored = await registry.create(def, obj.metadata.namespace, obj, { keepStatus: true });
      created++;
      if (def.kind === 'Node') await events.record(stored, 'Normal', 'Registered', `Node ${stored.metadata.name} registered from the fleet file`);
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    }
  }
  if (created) log.info({ created }, 'fleet registered');
  return created;
}
