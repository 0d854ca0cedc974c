// Starts the real control plane (the one `k8s4ai up` runs) for a test: loopback only,
// a free port, a throwaway data directory, logs to `<dir>/log`; stop() closes it and
// removes the directory.
//
//   const t = await startTestControlPlane();            // memory store, no fleet
//   await kubectl(['get', 'ns'], { kubeconfig: t.kubeconfig, home: t.dir });
//   const res = await t.fetch('/api/v1/namespaces');    // admin token, CA trusted
//   await t.stop();
//
// kubectl needs the control plane to serve TLS: client-go reads a kubeconfig's
// credentials only when the transport is TLS (clientcmd `client_config.go`: "only try to
// read the auth information if we are secure"), so against an `http://` server it sends
// no bearer token and every request is 401.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit, type Response as UndiciResponse } from 'undici';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/controlplane.ts';
import { addToken } from '../../src/apiserver/auth.ts';
import { createLogger } from '../../src/lib/logger.ts';
import { readKubeconfig, writeKubeconfig } from '../../src/lib/kubeconfig.ts';
import { databasePath, tokensPath } from '../../src/lib/paths.ts';

export interface TestControlPlaneOptions {
  /** Backing store; default memory. An `etcd://…` URL uses that etcd. */
  store?: 'memory' | 'sqlite' | `etcd://${string}`;
  /** A fleet file to register on start; default none. */
  fleet?: string;
  /** Log level for the control plane's log file (`<dir>/log`); default warn. */
  logLevel?: string;
  /**
   * Run the gang scheduler, as `up` does; default off. Most tests use gangs as plain API
   * objects (and fixture Nodes with GPUs), which a running scheduler would bind.
   */
  scheduler?: boolean;
  /** Run an agent in the control plane (serving the fleet's simulated nodes, no node of its own); default off. */
  agent?: boolean | { heartbeatSeconds?: number; stateDir?: string };
  /** Seconds without a heartbeat before a node is lost. */
  nodeGraceSeconds?: number;
  /** Run the gang and node lifecycle controllers; default: as the scheduler. */
  lifecycle?: boolean;
  /** Run a `k8s4ai router` process per ContentRouter; default off. */
  routers?: boolean;
}

export interface TestControlPlane {
  cp: ControlPlane;
  /** The temporary data directory; also a good HOME for kubectl. */
  dir: string;
  /** `<dir>/kubeconfig` as the control plane wrote it (admin token). */
  kubeconfig: string;
  /** The server's base URL, e.g. https://127.0.0.1:41234. */
  url: string;
  /** The admin bearer token. */
  token: string;
  /**
   * fetch() at the control plane, trusting its CA when it serves TLS. `path` is appended
   * to the URL; the admin token is sent unless `token` is null (none) or another string.
   */
  fetch(path: string, init?: UndiciRequestInit & { token?: string | null }): Promise<UndiciResponse>;
  /** Issues a token for `namespaces` and writes a kubeconfig for it (context namespace: the first); returns its path. */
  tenantKubeconfig(user: string, namespaces: string[]): string;
  stop(): Promise<void>;
}

export async function startTestControlPlane(opts: TestControlPlaneOptions = {}): Promise<TestControlPlane> {
  const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-test-'));
  const logger = createLogger({ level: opts.logLevel ?? 'warn', file: join(dir, 'log') });
  let cp: ControlPlane | undefined;
  let dispatcher: Agent | undefined;
  const cleanup = async () => {
    await dispatcher?.destroy();
    if (cp) {
      // Watches (kubectl -w, informers) keep sockets open; close() would wait for them.
      cp.server.app.server.closeAllConnections();
      await cp.close();
    }
    logger.flush();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    cp = await startControlPlane({
      dataDir: dir,
      port: 0,
      address: '127.0.0.1',
      storeUrl: opts.store === 'sqlite' ? `sqlite://${databasePath(dir)}` : opts.store?.startsWith('etcd://') ? opts.store : 'memory://',
      fleetFile: opts.fleet,
      logger,
      scheduler: opts.scheduler ?? false,
      nodeGraceSeconds: opts.nodeGraceSeconds,
      lifecycle: opts.lifecycle,
      routers: opts.routers,
      ...(opts.agent ? { agent: { nodeName: null, serveSimulated: true, ...(typeof opts.agent === 'object' ? opts.agent : {}) } } : {}),
    });
    const own = readKubeconfig(cp.kubeconfig);
    if (own.caPem) dispatcher = new Agent({ connect: { ca: own.caPem } });
    const url = cp.url;
    let stopped = false;
    return {
      cp,
      dir,
      kubeconfig: cp.kubeconfig,
      url,
      token: own.token!,
      fetch(path, init = {}) {
        const { token = own.token, headers, ...rest } = init;
        const h = new Headers(headers as HeadersInit | undefined);
        if (token !== null && token !== undefined) h.set('authorization', `Bearer ${token}`);
        return undiciFetch(`${url}${path}`, { ...rest, headers: Object.fromEntries(h), ...(dispatcher ? { dispatcher } : {}) });
      },
      tenantKubeconfig(user, namespaces) {
        const token = addToken(tokensPath(dir), user, namespaces);
        const path = join(dir, `kubeconfig-${user}`);
        writeKubeconfig(path, { server: url, token, caPem: own.caPem, user, namespace: namespaces[0] });
        return path;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
}
