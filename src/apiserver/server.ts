// The Kubernetes-style REST server: discovery, OpenAPI, CRUD, patch, watch and Table
// output over the generic registry, with bearer-token auth. Stock kubectl and
// @kubernetes/client-node talk to it unchanged.
import { pipeline } from 'node:stream/promises';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Agent as HttpAgent, request as httpRequest, type Dispatcher } from 'undici';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'pino';
import { Registry as MetricsRegistry, Counter, Histogram, Gauge } from 'prom-client';
import type { KindDefinition } from '../api/kind.ts';
import { GROUP, VERSION, apiVersionOf } from '../api/kind.ts';
import type { KubeObject } from '../api/meta.ts';
import type { FieldValidation } from '../api/validate.ts';
import { ApiError, successStatus, type Status } from './errors.ts';
import { Registry, storeToApiError, type PatchType, type PropagationPolicy, type ObjectEvent } from './registry.ts';
import { TokenAuthenticator, authorize, type Principal, type Verb } from './auth.ts';
import { toTable, TABLE_ACCEPT } from './table.ts';
import { apiResourceList, apiGroup, apiGroupList, apiVersions, openapiV3, openapiV3Index, OPENAPI_V2_PROTOBUF } from './openapi.ts';
import { VERSION_INFO } from '../lib/version.ts';
import { decodeProtobufBody, PROTOBUF_CONTENT_TYPE } from './protobuf.ts';

export const MAX_BODY_BYTES = 3 * 1024 * 1024;
const DEFAULT_WATCH_TIMEOUT_SECONDS = 1800;
const BOOKMARK_INTERVAL_MS = 15_000;
/** A watcher whose socket buffers more than this is cut off; it re-watches from its last revision. */
const MAX_WATCH_BUFFER_BYTES = 16 * 1024 * 1024;

const JSON_TYPES = [
  'application/json',
  'application/merge-patch+json',
  'application/json-patch+json',
  'application/strategic-merge-patch+json',
] as const;

export interface ApiServerOptions {
  registry: Registry;
  authenticator: TokenAuthenticator;
  logger: Logger;
  metrics?: MetricsRegistry;
  https?: { key: string; cert: string };
  /** How often watches that allow bookmarks get one (default 15 s). */
  bookmarkIntervalMs?: number;
  /**
   * The bearer token the API server presents to node agents when it proxies Task logs
   * (`<data-dir>/agent-proxy-token`). Without it `tasks/<name>/log` answers 503.
   */
  agentProxyToken?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

interface ResourceTarget {
  def: KindDefinition;
  namespace?: string;
  name?: string;
  subresource?: 'status';
}

export interface ApiServer {
  app: FastifyInstance;
  metrics: MetricsRegistry;
  listen(port: number, host: string): Promise<string>;
  close(): Promise<void>;
}

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const { registry, authenticator } = opts;
  const metrics = opts.metrics ?? new MetricsRegistry();
  const requests = new Counter({
    name: 'k8s4ai_apiserver_request_total',
    help: 'API requests by verb, resource and HTTP code.',
    labelNames: ['verb', 'resource', 'code'] as const,
    registers: [metrics],
  });
  const latency = new Histogram({
    name: 'k8s4ai_apiserver_request_duration_seconds',
    help: 'API request latency by verb and resource (watches excluded).',
    labelNames: ['verb', 'resource'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metrics],
  });
  const watchers = new Gauge({ name: 'k8s4ai_apiserver_watchers', help: 'Open watches by resource.', labelNames: ['resource'] as const, registers: [metrics] });

  const app = Fastify({
    loggerInstance: opts.logger,
    // Per-request log lines would dominate the log at thousands of requests a second.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    ...(opts.https ? { https: opts.https } : {}),
    // Kubernetes names may contain dots and long query strings; keep routing literal.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  const coreKinds = registry.kinds.filter((k) => k.group === '');
  const groupKinds = registry.kinds.filter((k) => k.group === GROUP && k.version === VERSION);
  const openapiDocs = {
    'api/v1': openapiV3('v1', coreKinds),
    [`apis/${GROUP}/${VERSION}`]: openapiV3(`${GROUP}/${VERSION}`, groupKinds),
  };
  const openapiIndex = openapiV3Index(openapiDocs);

  // Bodies: JSON and its patch dialects, YAML, and anything else kept raw for a clear 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser([...JSON_TYPES], { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new ApiError('BadRequest', `the request body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });
  app.addContentTypeParser(['application/yaml', 'application/x-yaml'], { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseYaml(String(body)));
    } catch (err) {
      done(new ApiError('BadRequest', `the request body is not valid YAML: ${(err as Error).message}`), undefined);
    }
  });
  // kubectl's typed clients send built-in kinds as protobuf (`kubectl create namespace`); see protobuf.ts.
  app.addContentTypeParser(PROTOBUF_CONTENT_TYPE, { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      done(null, decodeProtobufBody(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, _body, done) => {
    done(
      new ApiError(
        'UnsupportedMediaType',
        `the body of the request was in an unknown format (${String(req.headers['content-type'])}) - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json`,
      ),
      undefined,
    );
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    const apiErr = toApiError(err);
    if (apiErr.statusCode >= 500) req.log.error({ err }, 'request failed');
    void reply.code(apiErr.statusCode).type('application/json').send(apiErr.toStatus());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new ApiError('NotFound', `the server could not find the requested resource (${req.method} ${req.url.split('?')[0]})`).toStatus());
  });

  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0]!;
    if (path === '/healthz' || path === '/readyz' || path === '/livez' || path === '/version') return;
    req.principal = authenticator.authenticate(req.headers.authorization);
  });

  // ---- health, version, metrics, discovery, OpenAPI ------------------------------------
  for (const p of ['/healthz', '/readyz', '/livez']) app.get(p, async (_req, reply) => reply.type('text/plain').send('ok'));
  app.get('/version', async () => VERSION_INFO);
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  app.get('/api', async (req) => apiVersions(String(req.headers.host ?? '')));
  app.get('/api/v1', async () => apiResourceList('v1', coreKinds));
  app.get('/apis', async () => apiGroupList());
  app.get(`/apis/${GROUP}`, async () => apiGroup());
  const groupResources = withTaskLog(apiResourceList(`${GROUP}/${VERSION}`, groupKinds));
  app.get(`/apis/${GROUP}/${VERSION}`, async () => groupResources);
  app.get('/openapi/v2', async (req, reply) => {
    if (/json/.test(String(req.headers.accept ?? '')) && !/protobuf/.test(String(req.headers.accept ?? ''))) {
      return reply.send({ swagger: '2.0', info: { title: 'k8s4ai', version: VERSION_INFO.gitVersion }, paths: {} });
    }
    return reply.type('application/octet-stream').send(OPENAPI_V2_PROTOBUF);
  });
  app.get('/openapi/v3', async () => openapiIndex);
  app.get('/openapi/v3/*', async (req) => {
    const gv = (req.params as { '*': string })['*'];
    const doc = (openapiDocs as Record<string, unknown>)[gv];
    if (!doc) throw new ApiError('NotFound', `no OpenAPI document for ${gv}`);
    return doc;
  });

  // ---- resources -----------------------------------------------------------------------
  const handle = (group: string) => async (req: FastifyRequest, reply: FastifyReply) => {
    const params = req.params as { group?: string; version?: string; '*': string };
    const version = group === '' ? 'v1' : params.version!;
    const target = resolveTarget(registry, group === '' ? '' : params.group!, version, params['*']);
    const query = req.query as Record<string, string | undefined>;
    const verb = verbOf(req.method, target, query);
    authorize(req.principal!, { verb, namespace: target.namespace, namespaced: target.def.namespaced, resource: target.def.plural, name: target.name });
    if (verb === 'watch') return serveWatch(req, reply, target, query);
    const started = process.hrtime.bigint();
    try {
      const result = await serveVerb(verb, req, reply, target, query);
      requests.inc({ verb, resource: target.def.plural, code: String(reply.statusCode) });
      return result;
    } catch (err) {
      requests.inc({ verb, resource: target.def.plural, code: String(toApiError(err).statusCode) });
      throw err;
    } finally {
      latency.observe({ verb, resource: target.def.plural }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
  // ---- Task logs ---------------------------------------------------------------------------
  // Proxied to the agent of the Task's node, as pods/log goes to the kubelet. The body is
  // piped through as it comes, so `logs -f` sees lines as the process writes them.
  const agentDispatcher = new HttpAgent({ keepAliveTimeout: 10_000 });
  const logStreams = new Set<AbortController>();
  // Follows last as long as their processes; close() must not wait for them.
  app.addHook('preClose', async () => {
    for (const ac of logStreams) ac.abort();
  });
  app.get(`/apis/${GROUP}/${VERSION}/namespaces/:namespace/tasks/:name/log`, async (req, reply) => {
    let code = 200;
    try {
      await serveTaskLog(req, reply);
    } catch (err) {
      code = toApiError(err).statusCode;
      throw err;
    } finally {
      requests.inc({ verb: 'get', resource: 'tasks/log', code: String(code) });
    }
  });

  async function serveTaskLog(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { namespace, name } = req.params as { namespace: string; name: string };
    authorize(req.principal!, { verb: 'get', namespace, namespaced: true, resource: 'tasks', name });
    const q = req.query as Record<string, string | undefined>;
    const follow = parseBoolean('follow', q.follow);
    const previous = parseBoolean('previous', q.previous);
    const tailLines = q.tailLines === undefined || q.tailLines === '' ? undefined : parseNonNegative('tailLines', q.tailLines);
    const taskDef = registry.find(GROUP, VERSION, 'tasks');
    const nodeDef = registry.find(GROUP, VERSION, 'nodes');
    if (!taskDef || !nodeDef) throw new ApiError('NotFound', 'the server could not find the requested resource');

    const task = await registry.get(taskDef, namespace, name);
    const nodeName = (task.spec as { nodeName?: string } | undefined)?.nodeName;
    if (!nodeName) {
      const phase = (task.status as { phase?: string } | undefined)?.phase ?? 'Pending';
      throw new ApiError('BadRequest', `task "${name}" is not bound to a node yet (phase ${phase}): it has no logs`, { name, group: GROUP, kind: 'tasks' });
    }
    const node = await registry.tryGet(nodeDef, undefined, nodeName);
    if (!node) throw new ApiError('NotFound', `task "${name}" is bound to node "${nodeName}", which does not exist`, { name: nodeName, group: GROUP, kind: 'nodes' });
    const endpoint = (node.status as { agentEndpoint?: string } | undefined)?.agentEndpoint;
    if (!endpoint) throw new ApiError('ServiceUnavailable', `no agent serves node "${nodeName}" (its status.agentEndpoint is empty): cannot read the logs of task "${name}"`);
    let base: URL;
    try {
      base = new URL(endpoint);
      if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new ApiError('ServiceUnavailable', `node "${nodeName}" has an invalid status.agentEndpoint "${endpoint}"`);
    }
    if (!opts.agentProxyToken) {
      throw new ApiError('ServiceUnavailable', 'the control plane has no agent credentials (agent proxy token), so it cannot read Task logs from node agents');
    }

    const qs = new URLSearchParams();
    if (follow) qs.set('follow', 'true');
    if (previous) qs.set('previous', 'true');
    if (tailLines !== undefined) qs.set('tailLines', String(tailLines));
    const url = new URL(`${base.pathname.replace(/\/+$/, '')}/logs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`, base);
    url.search = qs.toString();

    // One controller ends the upstream request whichever way this ends: the client leaves,
    // the server closes, or the stream fails.
    const ac = new AbortController();
    const abort = () => ac.abort();
    reply.raw.on('close', abort);
    logStreams.add(ac);
    try {
      let upstream: Dispatcher.ResponseData;
      try {
        upstream = await httpRequest(url, {
          method: 'GET',
          headers: { authorization: `Bearer ${opts.agentProxyToken}`, accept: 'text/plain' },
          signal: ac.signal,
          dispatcher: agentDispatcher,
          headersTimeout: 30_000,
          // A followed process may be quiet for hours.
          bodyTimeout: follow ? 0 : 300_000,
        });
      } catch (err) {
        // The client left while the agent was being asked: nobody to answer.
        if (reply.raw.destroyed) return void reply.hijack();
        throw new ApiError('ServiceUnavailable', `cannot reach the agent of node "${nodeName}" at ${endpoint}: ${(err as Error).message}`);
      }
      if (upstream.statusCode >= 400) {
        const text = await upstream.body.text().catch(() => '');
        throw agentFailure(upstream.statusCode, text, nodeName);
      }
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'Content-Type': String(upstream.headers['content-type'] ?? 'text/plain; charset=utf-8'),
        'Cache-Control': 'no-cache, private',
        'X-Content-Type-Options': 'nosniff',
      });
      raw.flushHeaders();
      try {
        // pipeline destroys the upstream body when the client goes, which aborts it.
        await pipeline(upstream.body, raw);
      } catch (err) {
        if (!ac.signal.aborted && !raw.destroyed) req.log.warn({ err, node: nodeName, task: `${namespace}/${name}` }, 'task log stream failed');
        if (!raw.destroyed) raw.destroy();
      }
    } finally {
      reply.raw.off('close', abort);
      logStreams.delete(ac);
    }
  }

  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/api/v1/*', handler: handle('') });
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/apis/:group/:version/*', handler: handle(GROUP) });

  async function serveVerb(verb: Verb, req: FastifyRequest, reply: FastifyReply, t: ResourceTarget, q: Record<string, string | undefined>) {
    const { def, namespace, name } = t;
    const dryRun = q.dryRun === 'All';
    const fieldValidation = parseFieldValidation(q.fieldValidation);
    const table = TABLE_ACCEPT.test(String(req.headers.accept ?? ''));
    const warn = (warnings: string[]) => {
      if (warnings.length) void reply.header('Warning', warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', '));
    };
    switch (verb) {
      case 'get': {
        const obj = await registry.get(def, namespace, name!);
        return table ? toTable(def, [obj], { resourceVersion: obj.metadata.resourceVersion }) : obj;
      }
      case 'list': {
        const list = await registry.list(def, namespace, {
          labelSelector: q.labelSelector,
          fieldSelector: q.fieldSelector,
          limit: q.limit ? parseNonNegative('limit', q.limit) : undefined,
          continue: q.continue,
        });
        return table ? toTable(def, list.items, list.metadata) : list;
      }
      case 'create': {
        const res = await registry.createWithWarnings(def, namespace, req.body, { dryRun, fieldValidation });
        warn(res.warnings);
        return reply.code(201).send(res.object);
      }
      case 'update': {
        const res = await registry.updateWithWarnings(def, namespace, name!, req.body, { dryRun, fieldValidation, subresource: t.subresource });
        warn(res.warnings);
        return res.object;
      }
      case 'patch': {
        const res = await registry.patch(def, namespace, name!, patchTypeOf(req.headers['content-type']), req.body, { dryRun, fieldValidation, subresource: t.subresource });
        warn(res.warnings);
        return res.object;
      }
      case 'delete': {
        const options = deleteOptions(req.body, q);
        const obj = await registry.delete(def, namespace, name!, { ...options, dryRun });
        return reply.code(obj.metadata.deletionTimestamp ? 202 : 200).send(obj);
      }
      case 'deletecollection': {
        const options = deleteOptions(req.body, q);
        return registry.deleteCollection(def, namespace, { labelSelector: q.labelSelector, fieldSelector: q.fieldSelector, ...options, dryRun });
      }
      default:
        throw new ApiError('MethodNotAllowed', `${req.method} is not supported here`);
    }
  }

  async function serveWatch(req: FastifyRequest, reply: FastifyReply, t: ResourceTarget, q: Record<string, string | undefined>) {
    const { def, namespace } = t;
    const table = TABLE_ACCEPT.test(String(req.headers.accept ?? ''));
    const timeoutSeconds = q.timeoutSeconds ? parseNonNegative('timeoutSeconds', q.timeoutSeconds) : DEFAULT_WATCH_TIMEOUT_SECONDS;
    const bookmarks = q.allowWatchBookmarks === 'true';
    let fieldSelector = q.fieldSelector;
    if (t.name) fieldSelector = [fieldSelector, `metadata.name=${t.name}`].filter(Boolean).join(',');

    const raw = reply.raw;
    const pending: string[] = [];
    let open = false;
    let closed = false;
    let headersSent = false;
    let lastRevision = Number(q.resourceVersion ?? 0) || 0;
    let timer: NodeJS.Timeout | undefined;
    let bookmarkTimer: NodeJS.Timeout | undefined;
    let storeWatch: { close(): void } | undefined;

    const finish = () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      clearInterval(bookmarkTimer);
      storeWatch?.close();
      watchers.dec({ resource: def.plural });
      if (open && !raw.writableEnded) raw.end();
    };
    const write = (line: string) => {
      if (closed) return;
      if (!open) {
        pending.push(line);
        return;
      }
      raw.write(line);
      if (raw.writableLength > MAX_WATCH_BUFFER_BYTES) finish();
    };
    const render = (e: ObjectEvent) => {
      lastRevision = Math.max(lastRevision, e.revision);
      let object: unknown = e.object;
      if (table) {
        object = toTable(def, [e.object], { resourceVersion: e.object.metadata.resourceVersion }, !headersSent);
        headersSent = true;
      }
      write(`${JSON.stringify({ type: e.type, object })}\n`);
    };
    const fail = (err: ApiError) => {
      write(`${JSON.stringify({ type: 'ERROR', object: err.toStatus() })}\n`);
      finish();
    };

    watchers.inc({ resource: def.plural });
    try {
      storeWatch = await registry.watch(def, namespace, { labelSelector: q.labelSelector, fieldSelector, resourceVersion: q.resourceVersion }, render, fail);
    } catch (err) {
      closed = true;
      watchers.dec({ resource: def.plural });
      throw err;
    }
    if (closed) {
      storeWatch.close();
    }
    reply.hijack();
    raw.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    // Send the headers now, not with the first event: clients wait for them (client-node's
    // informer.start() does not resolve until its watch has answered).
    raw.flushHeaders();
    open = true;
    for (const line of pending.splice(0)) raw.write(line);
    if (closed) {
      raw.end();
      return;
    }
    raw.on('close', finish);
    req.raw.on('close', finish);
    timer = setTimeout(finish, timeoutSeconds * 1000);
    if (bookmarks) {
      bookmarkTimer = setInterval(() => {
        write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(lastRevision) } } })}\n`);
      }, opts.bookmarkIntervalMs ?? BOOKMARK_INTERVAL_MS);
    }
  }

  return {
    app,
    metrics,
    async listen(port, host) {
      return app.listen({ port, host });
    },
    async close() {
      await app.close();
      await agentDispatcher.destroy();
    },
  };
}

/** The group's discovery list with `tasks/log` beside `tasks/status`, as core lists `pods/log`. */
function withTaskLog<T extends { resources: { name: string }[] }>(list: T): T {
  const at = list.resources.findIndex((r) => r.name === 'tasks/status');
  if (at < 0) return list;
  const resources = [...list.resources];
  resources.splice(at + 1, 0, { name: 'tasks/log', singularName: '', namespaced: true, kind: 'Task', verbs: ['get'] } as T['resources'][number]);
  return { ...list, resources };
}

/** An agent's refusal as a Status: its message kept, its code mapped to what the caller can act on. */
function agentFailure(statusCode: number, body: string, nodeName: string): ApiError {
  let message = body.trim().slice(0, 1000);
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // plain text: kept as it is
  }
  message ||= `HTTP ${statusCode}`;
  if (statusCode === 404) return new ApiError('NotFound', message);
  if (statusCode === 400) return new ApiError('BadRequest', message);
  // The caller's own credentials were fine; the agent refused the control plane's.
  if (statusCode === 401 || statusCode === 403) return new ApiError('InternalError', `the agent of node "${nodeName}" refused the control plane's credentials: ${message}`);
  return new ApiError('InternalError', `the agent of node "${nodeName}" failed (HTTP ${statusCode}): ${message}`);
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e?.statusCode === 413) {
    return new ApiError('RequestEntityTooLarge', `the request body is larger than the limit of ${MAX_BODY_BYTES} bytes`);
  }
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e?.statusCode === 415) {
    return new ApiError('UnsupportedMediaType', e.message ?? 'unsupported media type');
  }
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new ApiError('BadRequest', e.message ?? 'bad request');
  return storeToApiError(err);
}

/** Splits a resource URL into kind, namespace, name and subresource. */
function resolveTarget(registry: Registry, group: string, version: string, rest: string): ResourceTarget {
  let segs = rest.split('/').filter(Boolean).map(decodeURIComponent);
  let namespace: string | undefined;
  const namespaceSubresource = group === '' && segs[0] === 'namespaces' && segs.length === 3 && (segs[2] === 'status' || segs[2] === 'finalize');
  if (segs[0] === 'namespaces' && segs.length >= 3 && !namespaceSubresource) {
    namespace = segs[1];
    segs = segs.slice(2);
  }
  const [plural, name, sub, ...extra] = segs;
  const def = plural ? registry.find(group, version, plural) : undefined;
  const notFound = () => new ApiError('NotFound', `the server could not find the requested resource`);
  if (!def || extra.length) throw notFound();
  if (namespace !== undefined && !def.namespaced) throw notFound();
  if (sub !== undefined && sub !== 'status' && sub !== 'finalize') throw notFound();
  return { def, namespace, name, subresource: sub ? 'status' : undefined };
}

function verbOf(method: string, t: ResourceTarget, q: Record<string, string | undefined>): Verb {
  const watch = q.watch === 'true' || q.watch === '1';
  switch (method) {
    case 'GET':
      return watch ? 'watch' : t.name ? 'get' : 'list';
    case 'POST':
      if (t.name) throw new ApiError('MethodNotAllowed', 'POST is for collections; use PUT or PATCH on an object');
      if (t.def.namespaced && t.namespace === undefined) throw new ApiError('MethodNotAllowed', `create ${t.def.plural} under /namespaces/<namespace>/${t.def.plural}`);
      return 'create';
    case 'PUT':
      if (!t.name) throw new ApiError('MethodNotAllowed', 'PUT needs an object name');
      return 'update';
    case 'PATCH':
      if (!t.name) throw new ApiError('MethodNotAllowed', 'PATCH needs an object name');
      return 'patch';
    case 'DELETE':
      return t.name ? 'delete' : 'deletecollection';
    default:
      throw new ApiError('MethodNotAllowed', `${method} is not supported`);
  }
}

function patchTypeOf(contentType: string | undefined): PatchType {
  const ct = String(contentType ?? '').split(';')[0]!.trim();
  if (ct === 'application/merge-patch+json' || ct === 'application/json') return 'merge';
  if (ct === 'application/json-patch+json') return 'json';
  if (ct === 'application/strategic-merge-patch+json') return 'strategic';
  throw new ApiError(
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
  );
}

function parseFieldValidation(v: string | undefined): FieldValidation | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw new ApiError('BadRequest', `fieldValidation must be Strict, Warn or Ignore, not "${v}"`);
}

function parseBoolean(name: string, v: string | undefined): boolean {
  if (v === undefined || v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw new ApiError('BadRequest', `${name} must be true or false, not "${v}"`);
}

function parseNonNegative(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new ApiError('BadRequest', `${name} must be a non-negative integer, not "${v}"`);
  return n;
}

function deleteOptions(body: unknown, q: Record<string, string | undefined>): { propagationPolicy?: PropagationPolicy; preconditions?: { uid?: string; resourceVersion?: string } } {
  const b = (body && typeof body === 'object' ? body : {}) as { propagationPolicy?: string; preconditions?: { uid?: string; resourceVersion?: string }; orphanDependents?: boolean };
  const policy = b.propagationPolicy ?? q.propagationPolicy ?? (b.orphanDependents === true ? 'Orphan' : undefined);
  if (policy !== undefined && policy !== 'Background' && policy !== 'Foreground' && policy !== 'Orphan') {
    throw new ApiError('BadRequest', `propagationPolicy must be Background, Foreground or Orphan, not "${policy}"`);
  }
  return { propagationPolicy: policy as PropagationPolicy | undefined, preconditions: b.preconditions };
}

export type { Status, KubeObject };
export { successStatus };
