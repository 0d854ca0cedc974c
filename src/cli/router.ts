// `k8s4ai router`: the data plane as its own process. Either standalone (`--backend URL`,
// configuration from flags) or bound to a ContentRouter (`--content-router NS/NAME`: the
// configuration, tenants and backends come from the API server, and the status goes back
// there), which is how `up` runs one per ContentRouter. SIGTERM drains: no new connections,
// requests in flight finish, then exit 0.
//
// `--workers N` runs N such routers as node:cluster workers on one listening socket: one event
// loop tops out near one core, and the proxying is per-request CPU work that spreads over
// processes with nothing shared but the port. The primary only forks, restarts a worker that
// dies, forwards SIGTERM and exits once every worker has drained. What each worker learns stays
// its own: its prefix index (with the History source it sees only the requests it routed, so
// affinity weakens as N grows; the KVEvents source gives every worker the engines' own view),
// its view of backend load, and its /metrics. With a ContentRouter, worker 1 alone writes the
// status, so that N writers do not overwrite one another every few seconds.
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { parseDuration } from '../api/duration.ts';
import { parseQuantity, NANO_PER_UNIT } from '../api/quantity.ts';
import { createLogger } from '../lib/logger.ts';
import { startRouter, type RouterConfig, type RouterOptions } from '../router/server.ts';
import { INDEX_SOURCES, type IndexSource } from '../api/kinds/contentrouter.ts';
import { isPolicyName, POLICY_NAMES, type PolicyOptions } from '../router/policies/registry.ts';
import { loadTenantsFile, parseTenantFlags, type TenantSpec } from '../router/tenants.ts';
import { clientFor, type GlobalOptions } from './context.ts';
import { CliError } from './errors.ts';

export interface RouterCommandOptions extends GlobalOptions {
  contentRouter?: string;
  backend?: string[];
  policy?: string;
  loadBound?: string;
  minMatchRatio?: string;
  blockTokens?: string;
  tenant?: string[];
  tenantsFile?: string;
  saltSecret?: string;
  port?: string;
  address?: string;
  maxBody?: string;
  retries?: string;
  maxInFlightPerBackend?: string;
  indexCapacity?: string;
  indexSource?: string;
  connectTimeout?: string;
  firstTokenTimeout?: string;
  idleTimeout?: string;
  drainTimeout?: string;
  workers?: string;
  logLevel?: string;
  logFile?: string;
}

/** Flags that configure routing: with --content-router the ContentRouter's spec does. */
const CONFIG_FLAGS = {
  backend: '--backend', policy: '--policy', loadBound: '--load-bound', minMatchRatio: '--min-match-ratio', blockTokens: '--block-tokens', tenant: '--tenant', tenantsFile: '--tenants-file', saltSecret: '--salt-secret',
  maxBody: '--max-body', retries: '--retries', maxInFlightPerBackend: '--max-in-flight-per-backend', indexCapacity: '--index-capacity', indexSource: '--index-source',
  connectTimeout: '--connect-timeout', firstTokenTimeout: '--first-token-timeout', idleTimeout: '--idle-timeout',
} as const;

const int = (v: string | undefined, flag: string, min: number): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${flag} must be an integer >= ${min}, not "${v}"`);
  return n;
};

const millis = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  try {
    const ms = parseDuration(v) * 1000;
    if (ms <= 0) throw new Error('must be > 0');
    return ms;
  } catch (err) {
    throw new CliError(`${flag}: ${(err as Error).message}`);
  }
};

/** The options startRouter gets from the command line (exported for tests). */
export function routerOptionsFromFlags(o: RouterCommandOptions): RouterOptions {
  const port = int(o.port, '--port', 0);
  if (port !== undefined && port > 65535) throw new CliError(`--port must be 0-65535, not "${o.port}"`);
  if (o.contentRouter) {
    const given = (Object.keys(CONFIG_FLAGS) as (keyof typeof CONFIG_FLAGS)[]).filter((k) => o[k] !== undefined && !(Array.isArray(o[k]) && !o[k].length));
    if (given.length) throw new CliError(`${given.map((k) => CONFIG_FLAGS[k]).join(', ')}: with --content-router the configuration comes from the ContentRouter's spec`);
    return { port, address: o.address, drainTimeoutMs: millis(o.drainTimeout, '--drain-timeout') };
  }
  if (!o.backend?.length) throw new CliError('name the backends (--backend URL, repeatable) or a ContentRouter (--content-router NAMESPACE/NAME)');
  let tenants: TenantSpec[] = [];
  try {
    if (o.tenantsFile) tenants = loadTenantsFile(o.tenantsFile);
    if (o.tenant?.length) tenants = [...tenants, ...parseTenantFlags(o.tenant)];
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  let maxBodyBytes: number | undefined;
  if (o.maxBody !== undefined) {
    try {
      maxBodyBytes = Number(parseQuantity(o.maxBody) / NANO_PER_UNIT);
    } catch (err) {
      throw new CliError(`--max-body: ${(err as Error).message}`);
    }
  }
  if (o.indexSource !== undefined && !INDEX_SOURCES.includes(o.indexSource as IndexSource)) {
    throw new CliError(`--index-source must be ${INDEX_SOURCES.join(' or ')}, not "${o.indexSource}"`);
  }
  const policyOptions: PolicyOptions = {};
  if (o.loadBound !== undefined) {
    policyOptions.loadBound = Number(o.loadBound);
    if (!(policyOptions.loadBound >= 1)) throw new CliError(`--load-bound must be a number >= 1, not "${o.loadBound}"`);
  }
  if (o.minMatchRatio !== undefined) {
    policyOptions.minMatchRatio = Number(o.minMatchRatio);
    if (!(policyOptions.minMatchRatio >= 0 && policyOptions.minMatchRatio <= 1)) throw new CliError(`--min-match-ratio must be in [0, 1], not "${o.minMatchRatio}"`);
  }
  if (o.policy !== undefined && !isPolicyName(o.policy)) throw new CliError(`--policy must be one of ${POLICY_NAMES.join(', ')}, not "${o.policy}"`);
  const config: Partial<RouterConfig> = {
    policy: o.policy,
    policyOptions,
    blockTokens: int(o.blockTokens, '--block-tokens', 1),
    tenants,
    saltSecret: o.saltSecret ?? process.env.K8S4AI_ROUTER_SALT_SECRET,
    retries: int(o.retries, '--retries', 0),
    maxInFlightPerBackend: int(o.maxInFlightPerBackend, '--max-in-flight-per-backend', 1),
    indexCapacityBlocks: int(o.indexCapacity, '--index-capacity', 1),
    indexSource: o.indexSource as IndexSource | undefined,
    connectTimeoutMs: millis(o.connectTimeout, '--connect-timeout'),
    firstTokenTimeoutMs: millis(o.firstTokenTimeout, '--first-token-timeout'),
    idleTimeoutMs: millis(o.idleTimeout, '--idle-timeout'),
    maxBodyBytes,
  };
  return { ...config, backends: o.backend, port: port ?? 8080, address: o.address ?? '127.0.0.1', drainTimeoutMs: millis(o.drainTimeout, '--drain-timeout') };
}

/** `--workers`: a positive integer, or "auto" (one per CPU this process may use). */
export function parseWorkers(v: string | undefined): number {
  if (v === undefined) return 1;
  if (v === 'auto') return availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--workers must be an integer >= 1 or "auto", not "${v}"`);
  return n;
}

/** The environment variable that tells a worker its slot (1..N; a restarted worker keeps its slot). */
const WORKER_SLOT_ENV = 'K8S4AI_ROUTER_WORKER';
/** What a worker sends the primary once it listens. */
interface WorkerReady {
  k8s4aiRouter: 'ready';
  url: string;
  policy: string;
}
/** A worker that dies sooner than this after its start is restarted after RESTART_DELAY_MS, not at once (no crash loop at full speed). */
const QUICK_DEATH_MS = 5000;
const RESTART_DELAY_MS = 1000;

export async function routerCommand(o: RouterCommandOptions): Promise<void> {
  const workers = parseWorkers(o.workers);
  if (workers > 1 && cluster.isPrimary) {
    // Check the flags once here: a mistake is one error, not one per worker.
    routerOptionsFromFlags(o);
    return runPrimary(o, workers);
  }
  return serve(o);
}

/** The cluster's primary: forks the workers, keeps N alive, and drains them on SIGTERM. */
async function runPrimary(o: RouterCommandOptions, n: number): Promise<void> {
  const log: Logger = createLogger({ level: o.logLevel ?? 'info', file: o.logFile ?? '-', name: 'k8s4ai-router' });
  const slots = new Map<number, number>(); // worker id → slot
  const startedAt = new Map<number, number>(); // slot → when its worker was forked
  const ready = new Set<number>();
  let announced = false;
  let stopping = false;
  let failure: string | undefined;
  let unclean = 0;
  // A larger young generation: a proxy allocates small, short-lived buffers per request, and
  // fewer scavenges leave more of each core to the requests.
  cluster.setupPrimary({ execArgv: [...process.execArgv, '--max-semi-space-size=32'] });
  const fork = (slot: number) => {
    const w = cluster.fork({ [WORKER_SLOT_ENV]: String(slot) });
    slots.set(w.id, slot);
    startedAt.set(slot, Date.now());
    w.on('message', (m: Partial<WorkerReady> | undefined) => {
      if (m?.k8s4aiRouter !== 'ready') return;
      ready.add(slot);
      if (announced || ready.size < n) return;
      announced = true;
      log.info({ url: m.url, workers: n }, 'router listening');
      process.stdout.write(`k8s4ai router listening on ${m.url} (policy ${m.policy}${o.contentRouter ? `, ContentRouter ${o.contentRouter}` : ''}, ${n} workers); SIGTERM drains\n`);
    });
  };
  const signalAll = (signal: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) if (w && !w.isDead()) w.process.kill(signal);
  };
  await new Promise<void>((resolve) => {
    const done = () => {
      if (!slots.size) resolve();
    };
    cluster.on('exit', (w, code, signal) => {
      const slot = slots.get(w.id) ?? 0;
      slots.delete(w.id);
      if (stopping) {
        if (code !== 0) unclean++;
        return done();
      }
      if (!announced) {
        // A worker failing before all listen would fail again (port taken, bad configuration,
        // API server unreachable): stop the others and report it, rather than loop.
        failure = `router worker ${slot} exited before the router was ready (code ${code}${signal ? `, signal ${signal}` : ''})`;
        stopping = true;
        signalAll('SIGTERM');
        return done();
      }
      const lived = Date.now() - (startedAt.get(slot) ?? 0);
      log.warn({ worker: slot, code, signal, livedMs: lived }, 'router worker died; starting another');
      ready.delete(slot);
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, lived < QUICK_DEATH_MS ? RESTART_DELAY_MS : 0);
    });
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal: stop waiting for requests in flight.
        signalAll('SIGKILL');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal, workers: slots.size }, 'draining');
      signalAll('SIGTERM');
      done();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    for (let slot = 1; slot <= n; slot++) fork(slot);
  });
  if (failure) {
    log.error({ err: failure }, 'router failed to start');
    log.flush();
    throw new CliError(failure);
  }
  log.info({ unclean }, 'router stopped');
  log.flush();
  if (unclean) throw new CliError(`${unclean} router worker(s) did not drain cleanly`);
}

/** An ApiClient that writes no status: for the workers that leave the ContentRouter's status to worker 1. */
function withoutStatusWrites(client: ReturnType<typeof clientFor>): ReturnType<typeof clientFor> {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'patch') {
        return (...args: Parameters<typeof target.patch>) => (args[5] === 'status' ? Promise.resolve(undefined as unknown as Awaited<ReturnType<typeof target.patch>>) : target.patch(...args));
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** One router in this process (the whole router, or one cluster worker). */
async function serve(o: RouterCommandOptions): Promise<void> {
  const options = routerOptionsFromFlags(o);
  const slot = cluster.isWorker ? Number(process.env[WORKER_SLOT_ENV] ?? cluster.worker?.id ?? 1) : 0;
  let log: Logger = createLogger({ level: o.logLevel ?? 'info', file: o.logFile ?? '-', name: 'k8s4ai-router' });
  if (slot) log = log.child({ worker: slot });
  options.log = log;
  const client = o.contentRouter ? clientFor(o) : undefined;
  if (o.contentRouter) {
    const parts = o.contentRouter.split('/');
    const [namespace, name] = parts.length === 2 ? parts : [client!.namespace || 'default', parts[0]];
    if (!namespace || !name || parts.length > 2) throw new CliError(`--content-router wants NAMESPACE/NAME, not "${o.contentRouter}"`);
    options.contentRouter = { client: slot > 1 ? withoutStatusWrites(client!) : client!, namespace, name, log };
  }
  let router;
  try {
    router = await startRouter(options);
  } catch (err) {
    await client?.close();
    log.error({ err: (err as Error).message }, 'router failed to start');
    log.flush();
    throw new CliError((err as Error).message);
  }
  if (slot) {
    const msg: WorkerReady = { k8s4aiRouter: 'ready', url: router.url, policy: router.config.policy };
    process.send?.(msg);
  } else {
    log.info({ url: router.url, policy: router.config.policy, backends: router.backends.size }, 'router listening');
    process.stdout.write(`k8s4ai router listening on ${router.url} (policy ${router.config.policy}${o.contentRouter ? `, ContentRouter ${o.contentRouter}` : ''}); SIGTERM drains\n`);
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal: stop waiting for requests in flight.
        process.exit(1);
      }
      stopping = true;
      log.info({ signal, inFlight: router.inFlight() }, 'draining');
      void router.close().then(async () => {
        await client?.close();
        log.info('router stopped');
        log.flush();
        resolve();
      });
    };
    if (slot) {
      // The primary forwards SIGTERM; a terminal's Ctrl-C reaches the whole process group, and
      // counting it here too would make the primary's SIGTERM a second signal (exit 1).
      process.on('SIGINT', () => undefined);
      process.on('SIGTERM', () => stop('SIGTERM'));
      // The primary is gone (killed): nobody will forward a signal, so drain now.
      process.on('disconnect', () => {
        if (!stopping) stop('disconnect');
      });
    } else {
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    }
  });
  // The IPC channel to the primary would keep a worker alive.
  if (slot) process.exit(0);
}
