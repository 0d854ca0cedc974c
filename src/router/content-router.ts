// A router bound to a ContentRouter object: its configuration (tenants, routing, limits)
// comes from the spec, so a restarted router (or a second replica) behaves the same with no
// flags; its backends are the serving Tasks of the spec's InferenceService, followed with
// informers so replicas come and go without a restart; its status (url, backends, hit
// rates) is written back every few seconds through the status subresource.
//
// Backends: Tasks labelled `k8s4ai.io/inferenceservice=<serviceName>` in the ContentRouter's
// namespace, phase Running, rank 0 of their replica gang (spec.index 0: the member that
// serves), not being deleted; the URL is `status.endpoint` (set by the agent), else
// `http://127.0.0.1:<InferenceService.spec.port>`. Without a serviceName, `spec.backends`.
import type { Logger } from 'pino';
import type { ApiClient } from '../client/client.ts';
import { Informer } from '../client/informer.ts';
import type { KubeObject, Condition } from '../api/meta.ts';
import { setCondition } from '../api/meta.ts';
import { ContentRouter, InferenceService, Task } from '../api/kinds/index.ts';
import type { ContentRouterSpec } from '../api/kinds/contentrouter.ts';
import { parseDuration } from '../api/duration.ts';
import { parseQuantity, NANO_PER_UNIT } from '../api/quantity.ts';
import type { PolicyOptions } from './policies/registry.ts';
import { RouterConfigError, RouterConfigErrorCode, DEFAULT_ROUTER_CONFIG, type Router, type RouterConfig } from './server.ts';

/** The label the scheduler puts on an InferenceService's Tasks. */
export const LABEL_SERVICE = 'k8s4ai.io/inferenceservice';

export interface ContentRouterRef {
  client: ApiClient;
  namespace: string;
  name: string;
  /** Between status writes; default 3000. */
  statusIntervalMs?: number;
  log?: Logger;
}

export interface ContentRouterLink {
  /** Stops following the objects; writes a last status saying the router stopped. */
  stop(): Promise<void>;
  /** Writes the status now (tests). */
  writeStatus(): Promise<void>;
}

/** The router configuration a ContentRouter spec describes (`uid` derives the tenants' salts). */
export function configFromSpec(spec: ContentRouterSpec, uid: string): RouterConfig {
  const d = DEFAULT_ROUTER_CONFIG;
  const ms = (v: string | undefined, fallback: number, what: string) => {
    if (v === undefined) return fallback;
    try {
      return parseDuration(v) * 1000;
    } catch (err) {
      throw new RouterConfigError(RouterConfigErrorCode.INVALID, `timeouts.${what}: ${(err as Error).message}`);
    }
  };
  let maxBodyBytes = d.maxBodyBytes;
  if (spec.maxBodySize !== undefined) {
    try {
      maxBodyBytes = Number(parseQuantity(spec.maxBodySize) / NANO_PER_UNIT);
    } catch (err) {
      throw new RouterConfigError(RouterConfigErrorCode.INVALID, `maxBodySize: ${(err as Error).message}`);
    }
  }
  const policyOptions: PolicyOptions = {};
  if (spec.routing?.loadBound !== undefined) policyOptions.loadBound = spec.routing.loadBound;
  if (spec.routing?.minMatchRatio !== undefined) policyOptions.minMatchRatio = spec.routing.minMatchRatio;
  return {
    policy: spec.routing?.policy ?? d.policy,
    policyOptions,
    blockTokens: spec.routing?.blockSize ?? d.blockTokens,
    indexCapacityBlocks: spec.index?.capacityBlocks ?? d.indexCapacityBlocks,
    indexSource: spec.index?.source ?? d.indexSource,
    tenants: (spec.tenants ?? []).map((t) => ({ ...t, apiKeyHashes: [...t.apiKeyHashes] })),
    saltSecret: uid,
    retries: spec.retries ?? d.retries,
    connectTimeoutMs: ms(spec.timeouts?.connect, d.connectTimeoutMs, 'connect'),
    firstTokenTimeoutMs: ms(spec.timeouts?.firstToken, d.firstTokenTimeoutMs, 'firstToken'),
    idleTimeoutMs: ms(spec.timeouts?.idle, d.idleTimeoutMs, 'idle'),
    maxInFlightPerBackend: spec.maxInFlightPerBackend ?? d.maxInFlightPerBackend,
    maxBodyBytes,
  };
}

/** Reads the ContentRouter once: its configuration and where to listen. */
export async function loadContentRouter(ref: ContentRouterRef): Promise<{ object: KubeObject; config: RouterConfig; listen: { address?: string; port?: number } }> {
  let object: KubeObject;
  try {
    object = await ref.client.get(ContentRouter, ref.namespace, ref.name);
  } catch (err) {
    throw new RouterConfigError(RouterConfigErrorCode.CONTENT_ROUTER, `cannot read ContentRouter ${ref.namespace}/${ref.name}: ${(err as Error).message}`);
  }
  const spec = (object.spec ?? {}) as ContentRouterSpec;
  return { object, config: configFromSpec(spec, object.metadata.uid ?? `${ref.namespace}/${ref.name}`), listen: { address: spec.listen?.address, port: spec.listen?.port } };
}

/** The backend URLs of an InferenceService: its serving Tasks' endpoints. */
export function serviceBackends(tasks: Iterable<KubeObject>, servicePort: number | undefined): string[] {
  const urls = new Set<string>();
  for (const t of tasks) {
    if (t.metadata.deletionTimestamp) continue;
    const spec = (t.spec ?? {}) as { index?: number };
    const status = (t.status ?? {}) as { phase?: string; endpoint?: string };
    if (status.phase !== 'Running' || (spec.index ?? 0) !== 0) continue;
    if (status.endpoint) urls.add(status.endpoint);
    else urls.add(`http://127.0.0.1:${servicePort ?? 8000}`);
  }
  return [...urls].sort();
}

/** Follows the ContentRouter, its service's Tasks and the service; writes the status. */
export async function linkContentRouter(router: Router, ref: ContentRouterRef): Promise<ContentRouterLink> {
  const { client, namespace, name, log } = ref;
  let spec: ContentRouterSpec = {};
  let generation = 0;
  let conditions: Condition[] | undefined;
  let service: string | undefined;
  let tasks: Informer | undefined;
  let isvc: Informer | undefined;
  let stopped = false;

  const refreshBackends = () => {
    if (stopped) return;
    if (service) {
      const port = [...(isvc?.cache.values() ?? [])][0]?.spec as { port?: number } | undefined;
      router.backends.set(serviceBackends(tasks?.cache.values() ?? [], port?.port));
    } else {
      router.backends.set((spec.backends ?? []).map((b) => b.url));
    }
  };

  const follow = (svc: string | undefined) => {
    if (svc !== service || (svc && !tasks)) {
      tasks?.stop();
      isvc?.stop();
      tasks = isvc = undefined;
      service = svc;
      if (svc) {
        const handlers = { add: refreshBackends, update: refreshBackends, delete: refreshBackends, relist: refreshBackends, error: (err: Error) => log?.warn({ err: err.message }, 'watch error') };
        tasks = new Informer(client, Task, namespace, handlers, { labelSelector: `${LABEL_SERVICE}=${svc}` }).start();
        isvc = new Informer(client, InferenceService, namespace, handlers, { fieldSelector: `metadata.name=${svc}` }).start();
      }
    }
    refreshBackends();
  };

  const apply = (obj: KubeObject) => {
    const next = (obj.spec ?? {}) as ContentRouterSpec;
    conditions = (obj.status as { conditions?: Condition[] } | undefined)?.conditions ?? conditions;
    const gen = obj.metadata.generation ?? 0;
    if (gen !== generation) {
      generation = gen;
      try {
        router.reconfigure(configFromSpec(next, obj.metadata.uid ?? `${namespace}/${name}`));
        spec = next;
      } catch (err) {
        // Keep serving with the last good configuration; the status says why.
        log?.error({ err: (err as Error).message }, 'ContentRouter spec not applied');
        conditions = setCondition(conditions, { type: 'ConfigApplied', status: 'False', reason: 'InvalidSpec', message: (err as Error).message, observedGeneration: gen });
        return;
      }
      conditions = setCondition(conditions, { type: 'ConfigApplied', status: 'True', reason: 'Applied', message: `generation ${gen}`, observedGeneration: gen });
    }
    follow(spec.serviceName);
  };

  const first = await loadContentRouter(ref);
  spec = (first.object.spec ?? {}) as ContentRouterSpec;
  generation = first.object.metadata.generation ?? 0;
  conditions = (first.object.status as { conditions?: Condition[] } | undefined)?.conditions;
  conditions = setCondition(conditions, { type: 'ConfigApplied', status: 'True', reason: 'Applied', message: `generation ${generation}`, observedGeneration: generation });
  follow(spec.serviceName);
  const self = new Informer(client, ContentRouter, namespace, {
    add: apply,
    update: apply,
    delete: () => log?.warn('the ContentRouter was deleted; waiting to be stopped'),
    error: (err: Error) => log?.warn({ err: err.message }, 'watch error'),
  }, { fieldSelector: `metadata.name=${name}` }).start();

  let lastWritten = '';
  const statusNow = (stopping: boolean) => {
    const all = router.backends.all();
    const ready = stopping ? 0 : router.backends.ready().length;
    conditions = setCondition(conditions, stopping
      ? { type: 'Ready', status: 'False', reason: 'Stopped', message: 'the router process stopped' }
      : ready
        ? { type: 'Ready', status: 'True', reason: 'BackendsReady', message: `${ready} of ${all.length} backends ready` }
        : { type: 'Ready', status: 'False', reason: 'NoReadyBackend', message: all.length ? `none of ${all.length} backends passes its health check` : 'no backends (no running replica of the service)' });
    const round = (v: number) => Math.round(v * 10_000) / 10_000;
    return {
      url: router.url,
      readyBackends: ready,
      backends: all.map((b) => ({ url: b.url, ready: stopping ? false : b.ready, inFlight: b.inFlight })),
      blockHitRate: round(router.metrics.blockHitRate()),
      tokenHitRate: round(router.metrics.tokenHitRate()),
      conditions,
      observedGeneration: generation,
    };
  };
  let writing: Promise<void> = Promise.resolve();
  const write = (stopping = false) => {
    writing = writing.then(async () => {
      const status = statusNow(stopping);
      const text = JSON.stringify(status);
      if (text === lastWritten) return;
      try {
        await client.patch(ContentRouter, namespace, name, { status }, 'application/merge-patch+json', 'status');
        lastWritten = text;
      } catch (err) {
        log?.warn({ err: (err as Error).message }, 'cannot write the ContentRouter status');
      }
    });
    return writing;
  };
  const timer = setInterval(() => void write(), ref.statusIntervalMs ?? 3000);
  timer.unref();
  void write();

  return {
    writeStatus: () => write(),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      self.stop();
      tasks?.stop();
      isvc?.stop();
      await write(true);
    },
  };
}
