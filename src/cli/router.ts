// `k8s4ai router`: the data plane as its own process. Either standalone (`--backend URL`,
// configuration from flags) or bound to a ContentRouter (`--content-router NS/NAME`: the
// configuration, tenants and backends come from the API server, and the status goes back
// there), which is how `up` runs one per ContentRouter. SIGTERM drains: no new connections,
// requests in flight finish, then exit 0.
import type { Logger } from 'pino';
import { parseDuration } from '../api/duration.ts';
import { parseQuantity, NANO_PER_UNIT } from '../api/quantity.ts';
import { createLogger } from '../lib/logger.ts';
import { startRouter, IndexSource, type RouterConfig, type RouterOptions } from '../router/server.ts';
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
  if (o.indexSource !== undefined && !Object.values(IndexSource).includes(o.indexSource as IndexSource)) {
    throw new CliError(`--index-source must be ${Object.values(IndexSource).join(' or ')}, not "${o.indexSource}"`);
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

export async function routerCommand(o: RouterCommandOptions): Promise<void> {
  const options = routerOptionsFromFlags(o);
  const log: Logger = createLogger({ level: o.logLevel ?? 'info', file: o.logFile ?? '-', name: 'k8s4ai-router' });
  options.log = log;
  const client = o.contentRouter ? clientFor(o) : undefined;
  if (o.contentRouter) {
    const parts = o.contentRouter.split('/');
    const [namespace, name] = parts.length === 2 ? parts : [client!.namespace || 'default', parts[0]];
    if (!namespace || !name || parts.length > 2) throw new CliError(`--content-router wants NAMESPACE/NAME, not "${o.contentRouter}"`);
    options.contentRouter = { client: client!, namespace, name, log };
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
  log.info({ url: router.url, policy: router.config.policy, backends: router.backends.size }, 'router listening');
  process.stdout.write(`k8s4ai router listening on ${router.url} (policy ${router.config.policy}${o.contentRouter ? `, ContentRouter ${o.contentRouter}` : ''}); SIGTERM drains\n`);
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
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}
