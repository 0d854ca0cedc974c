// `k8s4ai router`: the data plane. An OpenAI-compatible HTTP entry point that authenticates
// the tenant from its API key, computes the prompt's prefix blocks (seeded by the tenant's
// salt), asks the routing policy for a backend among the ready ones under their bound, and
// proxies the request there, streaming the answer back as it comes.
//
// The hot path is kept lean: completions arrive through the inbound fast path (inbound.ts;
// node:http serves everything else, through the same admission and proxy code), the body is
// read once and parsed once (needed for the blocks), the tenant's `cache_salt` is spliced
// into the raw bytes rather than re-serializing the body (unless the client sent a
// cache_salt of its own, which is overwritten), the request goes out over the backend's
// keep-alive connections in one write (upstream.ts), the response body is written to the
// client chunk by chunk with backpressure, and metrics are plain counters until scraped.
//
// Resilience: response headers go to the client only with the first body byte, so a request
// that fails before it (connection refused, reset, 5xx, first-token timeout) can be retried
// on another backend (`retries`) without the client noticing. After the first byte a failure
// ends the stream cleanly: SSE gets a final `data: {"error": …}` event and a proper end; a
// non-SSE body, which cannot be completed validly, has its connection reset. A client that
// goes away aborts the upstream request, so the engine stops working for nobody.
import { createServer, type IncomingMessage, type ServerResponse, type Server, type OutgoingHttpHeaders } from 'node:http';
import { Inbound, type FastPathHandler, type FastResponse, type ProxyHeaders } from './inbound.ts';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { IndexSource, INDEX_SOURCES } from '../api/kinds/contentrouter.ts';
import { promptBlocks } from './prompt.ts';
import type { RouteRequest, RoutingPolicy } from './types.ts';
import { PrefixIndex } from './prefix-index.ts';
import { createPolicy, isPolicyName, POLICY_NAMES, type PolicyOptions } from './policies/registry.ts';
import { BackendSet, type Backend, type BackendSetOptions } from './backends.ts';
import type { UpstreamConnection, UpstreamError, UpstreamHandler } from './upstream.ts';
import { TenantTable, type Tenant, type TenantSpec } from './tenants.ts';
import { RouterMetrics } from './metrics.ts';
import type { ContentRouterRef, ContentRouterLink } from './content-router.ts';

/** The `code` of the router's own JSON errors (OpenAI's `{error: {message, type, code}}`). */
export const RouterErrorCode = {
  UNAUTHORIZED: 'invalid_api_key',
  BODY_TOO_LARGE: 'body_too_large',
  INVALID_BODY: 'invalid_body',
  NOT_FOUND: 'not_found',
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  TENANT_LIMIT: 'tenant_max_in_flight',
  BACKENDS_BUSY: 'backends_at_capacity',
  NO_BACKEND: 'no_ready_backend',
  UPSTREAM_ERROR: 'upstream_error',
  UPSTREAM_TIMEOUT: 'upstream_timeout',
  DRAINING: 'draining',
  INTERNAL: 'internal_error',
} as const;
export type RouterErrorCode = (typeof RouterErrorCode)[keyof typeof RouterErrorCode];

/** Failures to start or configure a router (not per-request errors). */
export const RouterConfigErrorCode = {
  INVALID: 'K8S4AI_ROUTER_INVALID_CONFIG',
  CONTENT_ROUTER: 'K8S4AI_ROUTER_CONTENT_ROUTER',
} as const;

export class RouterConfigError extends Error {
  constructor(readonly code: (typeof RouterConfigErrorCode)[keyof typeof RouterConfigErrorCode], message: string) {
    super(message);
    this.name = 'RouterConfigError';
  }
}


/** Everything a router's behaviour depends on; a ContentRouter's spec maps onto it. */
export interface RouterConfig {
  policy: string;
  /** Passed to the policy (loadBound, minMatchRatio, …). */
  policyOptions: PolicyOptions;
  blockTokens: number;
  indexCapacityBlocks: number;
  indexSource: IndexSource;
  tenants: TenantSpec[];
  /** Derives the salt of tenants that configure none (a ContentRouter's uid). */
  saltSecret: string;
  retries: number;
  connectTimeoutMs: number;
  firstTokenTimeoutMs: number;
  idleTimeoutMs: number;
  maxInFlightPerBackend: number;
  maxBodyBytes: number;
}

export const DEFAULT_ROUTER_CONFIG: Readonly<RouterConfig> = Object.freeze({
  policy: 'k8s4ai',
  policyOptions: {},
  blockTokens: 64,
  indexCapacityBlocks: 100_000,
  indexSource: IndexSource.History,
  tenants: [],
  saltSecret: 'k8s4ai-router',
  retries: 1,
  connectTimeoutMs: 2000,
  firstTokenTimeoutMs: 60_000,
  idleTimeoutMs: 30_000,
  maxInFlightPerBackend: 256,
  maxBodyBytes: 8 * 1024 * 1024,
});

export interface RouterOptions extends Partial<RouterConfig> {
  /** Static backends (standalone). */
  backends?: string[];
  /** Read configuration and backends from this ContentRouter, and write its status. */
  contentRouter?: ContentRouterRef;
  /** Listen address and port; default the ContentRouter's spec.listen, else 127.0.0.1:0. */
  address?: string;
  port?: number;
  log?: Logger;
  /** Health check and ejection tuning. */
  health?: Pick<BackendSetOptions, 'healthIntervalMs' | 'unhealthyThreshold' | 'ejectAfter' | 'ejectMs' | 'healthPath'>;
  /** How long close() waits for requests in flight before cutting them; default 30 s. */
  drainTimeoutMs?: number;
}

export interface Router {
  /** http://address:port */
  readonly url: string;
  readonly port: number;
  readonly config: Readonly<RouterConfig>;
  readonly backends: BackendSet;
  readonly index: PrefixIndex;
  readonly metrics: RouterMetrics;
  readonly tenants: TenantTable;
  readonly server: Server;
  /** Requests being proxied now. */
  inFlight(): number;
  /** Applies a new configuration (tenants, limits, policy, index) without a restart. */
  reconfigure(next: Partial<RouterConfig>): void;
  /** Stops accepting, lets requests in flight finish (up to drainTimeoutMs), then closes. */
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json';
const SSE_ERROR_TYPE = 'upstream_error';
/** Bytes of a response's tail searched for usage (prompt and cached tokens). */
const USAGE_TAIL_BYTES = 8192;
const MODELS_CACHE_MS = 2000;
/** Idle client connections close after this long (longer than common load balancers' 60 s). */
const KEEP_ALIVE_MS = 65_000;

/** A client's response on either path: node's ServerResponse, or the fast path's (inbound.ts). */
type ClientResponse = ServerResponse | FastResponse;

/** One client request through its attempts. */
interface Exchange {
  core: RouterCore;
  res: ClientResponse;
  path: string;
  /** The client's Accept header, forwarded. */
  accept: string | undefined;
  tenant: Tenant;
  payload: Buffer;
  route: RouteRequest;
  started: number;
  attempt: number;
  tried: Backend[];
  /** The client went away: nothing more is sent, the upstream is aborted. */
  clientGone: boolean;
  finished: boolean;
  /** The attempt in progress (cancelled when the client goes away). */
  attempt_: Attempt | undefined;
  lastError: string | undefined;
  lastTimeout: boolean;
  /** The request body as it arrives. */
  chunks: Buffer[];
  size: number;
  tooBig: boolean;
}

/**
 * Where the request and response objects keep their exchange: the listeners below are shared
 * by every request (a closure per request, and tsx's keepNames helper on each, cost more
 * than the request's routing at this size).
 */
const EXCHANGE = Symbol('k8s4ai.exchange');
type WithExchange = { [EXCHANGE]?: Exchange };

function onResClose(this: ServerResponse): void {
  if (this.writableFinished) return;
  clientGone((this as ServerResponse & WithExchange)[EXCHANGE]!);
}

/** The client went away before its response ended. */
function clientGone(x: Exchange): void {
  x.clientGone = true;
  x.attempt_?.cancel();
  x.core.complete(x, 499);
}

function onResDrain(this: ClientResponse): void {
  (this as ClientResponse & WithExchange)[EXCHANGE]?.attempt_?.resume();
}

function onReqData(this: IncomingMessage, c: Buffer): void {
  const x = (this as IncomingMessage & WithExchange)[EXCHANGE]!;
  if (x.tooBig) return;
  x.size += c.length;
  const max = x.core.config.maxBodyBytes;
  if (x.size > max) {
    // Stop collecting; the connection closes after the answer rather than reading on.
    x.tooBig = true;
    x.chunks.length = 0;
    this.pause();
    x.core.bodyTooBig(x, max);
    return;
  }
  x.chunks.push(c);
}

function onReqEnd(this: IncomingMessage): void {
  const x = (this as IncomingMessage & WithExchange)[EXCHANGE]!;
  if (x.tooBig || x.finished) return;
  const chunks = x.chunks;
  x.chunks = NO_CHUNKS;
  x.core.start(x, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, x.size));
}

function onReqError(this: IncomingMessage): void {
  const x = (this as IncomingMessage & WithExchange)[EXCHANGE]!;
  x.clientGone = true;
  x.core.complete(x, 499);
}

const NO_CHUNKS: Buffer[] = [];

/**
 * The three request headers the proxy path reads, from the raw list: cheaper than node's
 * `req.headers`, which builds an object of every header on first use. Repeated fields read
 * as `req.headers` would have them: the first Authorization and Content-Length, every
 * Accept joined with ", " (as the fast path reads them too).
 */
function proxyHeaders(raw: readonly string[]): ProxyHeaders {
  let authorization: string | undefined;
  let contentLength: string | undefined;
  let accept: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 6:
        if (name.toLowerCase() === 'accept') accept = accept === undefined ? raw[i + 1] : `${accept}, ${raw[i + 1]}`;
        break;
      case 13:
        if (authorization === undefined && name.toLowerCase() === 'authorization') authorization = raw[i + 1];
        break;
      case 14:
        if (contentLength === undefined && name.toLowerCase() === 'content-length') contentLength = raw[i + 1];
        break;
    }
  }
  return { authorization, contentLength, accept };
}

export async function startRouter(options: RouterOptions = {}): Promise<Router> {
  let link: ContentRouterLink | undefined;
  let base: Partial<RouterConfig> = {};
  let listen: { address?: string; port?: number } = {};
  if (options.contentRouter) {
    const { loadContentRouter } = await import('./content-router.ts');
    const loaded = await loadContentRouter(options.contentRouter);
    base = loaded.config;
    listen = loaded.listen;
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<RouterConfig>;
  const core = new RouterCore({ ...DEFAULT_ROUTER_CONFIG, ...base, ...pickConfig(defined) }, options);
  const address = options.address ?? listen.address ?? '127.0.0.1';
  await core.listen(options.port ?? listen.port ?? 0, address);
  if (options.backends?.length) core.backends.set(options.backends);
  if (options.contentRouter) {
    const { linkContentRouter } = await import('./content-router.ts');
    try {
      link = await linkContentRouter(core, options.contentRouter);
    } catch (err) {
      await core.close();
      throw err;
    }
    core.link = link;
  }
  return core;
}

function pickConfig(o: Partial<RouterConfig>): Partial<RouterConfig> {
  const out: Partial<RouterConfig> = {};
  for (const k of Object.keys(DEFAULT_ROUTER_CONFIG) as (keyof RouterConfig)[]) if (o[k] !== undefined) (out as Record<string, unknown>)[k] = o[k];
  return out;
}

function makePolicy(c: RouterConfig): RoutingPolicy {
  if (!isPolicyName(c.policy)) throw new RouterConfigError(RouterConfigErrorCode.INVALID, `unknown routing policy "${c.policy}" (known: ${POLICY_NAMES.join(', ')})`);
  return createPolicy(c.policy, c.policyOptions);
}

function validateConfig(c: RouterConfig): void {
  const positiveInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) throw new RouterConfigError(RouterConfigErrorCode.INVALID, `${what} must be a positive integer, not ${v}`);
  };
  positiveInt(c.blockTokens, 'blockTokens');
  positiveInt(c.indexCapacityBlocks, 'index capacity');
  positiveInt(c.maxInFlightPerBackend, 'maxInFlightPerBackend');
  positiveInt(c.maxBodyBytes, 'maxBodySize');
  if (!Number.isInteger(c.retries) || c.retries < 0) throw new RouterConfigError(RouterConfigErrorCode.INVALID, `retries must be an integer >= 0, not ${c.retries}`);
  for (const [k, v] of [['connect', c.connectTimeoutMs], ['firstToken', c.firstTokenTimeoutMs], ['idle', c.idleTimeoutMs]] as const) {
    if (!(v > 0)) throw new RouterConfigError(RouterConfigErrorCode.INVALID, `timeouts.${k} must be > 0`);
  }
  if (!INDEX_SOURCES.includes(c.indexSource)) throw new RouterConfigError(RouterConfigErrorCode.INVALID, `index source must be ${INDEX_SOURCES.join(' or ')}, not ${c.indexSource}`);
}

class RouterCore implements Router {
  config: RouterConfig;
  readonly backends: BackendSet;
  index: PrefixIndex;
  readonly metrics: RouterMetrics;
  readonly tenants: TenantTable;
  readonly server: Server;
  url = '';
  port = 0;
  link: ContentRouterLink | undefined;
  private policy: RoutingPolicy;
  private readonly log: Logger | undefined;
  private active = 0;
  private draining = false;
  private closing: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private modelsCache: { at: number; body: Buffer } | undefined;
  private readonly drainTimeoutMs: number;
  private readonly inbound: Inbound<Exchange>;

  constructor(config: RouterConfig, options: RouterOptions) {
    validateConfig(config);
    this.config = config;
    this.log = options.log;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
    this.tenants = new TenantTable(config.tenants, config.saltSecret);
    this.policy = makePolicy(config);
    this.index = new PrefixIndex({ capacityBlocks: config.indexCapacityBlocks });
    this.backends = new BackendSet({
      ...options.health,
      connectTimeoutMs: config.connectTimeoutMs,
      kvEvents: config.indexSource === IndexSource.KVEvents,
      log: options.log,
      onKvReset: (b) => this.index.cleared(b.id),
      onKvEvent: (b, e) => {
        if (e.type === 'stored') this.index.stored(b.id, e.hashes);
        else if (e.type === 'removed') this.index.removed(b.id, e.hashes);
        else this.index.cleared(b.id);
      },
      onRemove: (b) => this.index.removeBackend(b.id),
    });
    this.metrics = new RouterMetrics(() => this.backends.all());
    // No request or header timeouts of node's own beyond the defaults: a completion may stream
    // for many minutes; the per-attempt timers below bound the upstream side. This server
    // does not listen: the inbound listener hands it the connections its fast path does not
    // take (see inbound.ts).
    this.server = createServer({ noDelay: true, keepAliveTimeout: KEEP_ALIVE_MS }, (req, res) => this.handle(req, res));
    this.inbound = new Inbound(this.server, this.fastPath, {
      keepAliveMs: KEEP_ALIVE_MS,
      onError: (err) => this.log?.error({ err }, 'a request failed inside the router; its connection was closed'),
    });
  }

  listen(port: number, address: string): Promise<void> {
    const listener = this.inbound.listener;
    return new Promise((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, address, () => {
        listener.off('error', reject);
        // The node:http server never listens itself; 'listening' is what starts its
        // connection tracking (header and request timeouts, closeIdleConnections) for the
        // connections handed to it.
        this.server.emit('listening');
        const a = listener.address() as AddressInfo;
        this.port = a.port;
        const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        this.url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${a.port}`;
        resolve();
      });
    });
  }

  inFlight(): number {
    return this.active;
  }

  reconfigure(next: Partial<RouterConfig>): void {
    const c: RouterConfig = { ...this.config, ...pickConfig(next) };
    validateConfig(c);
    const prev = this.config;
    // Build everything first, so a bad configuration changes nothing.
    const policy = c.policy !== prev.policy || JSON.stringify(c.policyOptions) !== JSON.stringify(prev.policyOptions) ? makePolicy(c) : this.policy;
    this.tenants.update(c.tenants, c.saltSecret);
    this.policy = policy;
    // Blocks of another size (or salted otherwise) never match old entries: start afresh.
    if (c.indexCapacityBlocks !== prev.indexCapacityBlocks || c.blockTokens !== prev.blockTokens || c.saltSecret !== prev.saltSecret) {
      this.index = new PrefixIndex({ capacityBlocks: c.indexCapacityBlocks });
    }
    this.backends.setKvEvents(c.indexSource === IndexSource.KVEvents);
    this.config = c;
    this.log?.info({ policy: c.policy, blockTokens: c.blockTokens, tenants: c.tenants.length }, 'router reconfigured');
  }

  // ---- HTTP ----

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method;
    if (method === 'POST' && (path === '/v1/chat/completions' || path === '/v1/completions')) {
      this.proxy(req, res, path);
      return;
    }
    const get = method === 'GET' || method === 'HEAD';
    switch (path) {
      case '/healthz':
        if (!get) break;
        this.json(res, this.draining ? 503 : 200, { status: this.draining ? 'draining' : 'ok', readyBackends: this.backends.ready().length, backends: this.backends.size });
        return;
      case '/metrics':
        if (!get) break;
        void this.metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
            res.end(text);
          },
          (err: Error) => this.error(res, 500, 'server_error', err.message, RouterErrorCode.INTERNAL),
        );
        return;
      case '/v1/models':
        if (!get) break;
        void this.models(req, res);
        return;
      default:
        this.error(res, 404, 'invalid_request_error', `no route ${method} ${path}`, RouterErrorCode.NOT_FOUND);
        return;
    }
    this.error(res, 405, 'invalid_request_error', `${method} is not allowed on ${path}`, RouterErrorCode.METHOD_NOT_ALLOWED);
  }

  private json(res: ClientResponse, status: number, body: unknown, headers?: OutgoingHttpHeaders): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), ...(this.draining ? { connection: 'close' } : {}), ...headers });
    res.end(text);
  }

  private error(res: ClientResponse, status: number, type: string, message: string, code: RouterErrorCode, headers?: OutgoingHttpHeaders): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.json(res, status, { error: { message, type, param: null, code } }, headers);
  }

  /** An error answered before the body was read: a big body still unread closes the connection instead of being drained. */
  private refuse(res: ClientResponse, bodyUnread: boolean, status: number, type: string, message: string, code: RouterErrorCode, headers: OutgoingHttpHeaders = {}): void {
    this.error(res, status, type, message, code, bodyUnread ? { ...headers, connection: 'close' } : headers);
  }

  /** node:http's path: admit, then read the body through the request's stream. */
  private proxy(req: IncomingMessage, res: ServerResponse, path: string): void {
    const h = proxyHeaders(req.rawHeaders);
    const len = Number(h.contentLength ?? NaN);
    const x = this.admit(res, path, h, !(len <= 65_536) && !req.complete);
    if (!x) return;
    (res as ServerResponse & WithExchange)[EXCHANGE] = x;
    (req as IncomingMessage & WithExchange)[EXCHANGE] = x;
    res.on('close', onResClose);
    req.on('data', onReqData);
    req.on('end', onReqEnd);
    req.on('error', onReqError);
  }

  /** @internal The fast path's side (inbound.ts): the same admission, the body handed over whole. */
  readonly fastPath: FastPathHandler<Exchange> = {
    request: (res, path, h, bodyUnread) => {
      const x = this.admit(res, path, h, bodyUnread);
      if (x) (res as FastResponse & WithExchange)[EXCHANGE] = x;
      return x;
    },
    body: (x, body) => {
      if (!x.finished) this.start(x, body);
    },
    clientGone,
  };

  /**
   * The checks before a completion's body is read (draining, key, tenant limit, declared
   * size): answers a refusal and returns undefined, or counts the request in.
   */
  private admit(res: ClientResponse, path: string, h: ProxyHeaders, bodyUnread: boolean): Exchange | undefined {
    const started = performance.now();
    if (this.draining) {
      this.metrics.request(503, '-');
      this.refuse(res, bodyUnread, 503, 'server_error', 'the router is shutting down; retry on another replica', RouterErrorCode.DRAINING, { 'retry-after': '1' });
      return undefined;
    }
    const tenant = this.tenants.authenticate(h.authorization);
    if (!tenant) {
      this.metrics.request(401, '-');
      this.refuse(res, bodyUnread, 401, 'authentication_error', 'a valid API key is required (Authorization: Bearer <key>)', RouterErrorCode.UNAUTHORIZED, { 'www-authenticate': 'Bearer' });
      return undefined;
    }
    if (tenant.maxInFlight !== undefined && tenant.inFlight >= tenant.maxInFlight) {
      this.metrics.request(429, tenant.name);
      this.refuse(res, bodyUnread, 429, 'rate_limit_error', `tenant ${tenant.name} has ${tenant.inFlight} requests in flight, its limit`, RouterErrorCode.TENANT_LIMIT, { 'retry-after': '1' });
      return undefined;
    }
    const max = this.config.maxBodyBytes;
    const declared = h.contentLength;
    if (declared !== undefined && Number(declared) > max) {
      this.metrics.request(413, tenant.name);
      this.refuse(res, bodyUnread, 413, 'invalid_request_error', `the request body exceeds ${max} bytes`, RouterErrorCode.BODY_TOO_LARGE);
      return undefined;
    }
    tenant.inFlight++;
    this.active++;
    return {
      core: this, res, path, accept: h.accept, tenant, payload: EMPTY, route: undefined as unknown as RouteRequest, started,
      attempt: 0, tried: [], clientGone: false, finished: false, attempt_: undefined, lastError: undefined, lastTimeout: false,
      chunks: [], size: 0, tooBig: false,
    };
  }

  /** @internal The body grew past maxBodyBytes while it was read. */
  bodyTooBig(x: Exchange, max: number): void {
    this.error(x.res, 413, 'invalid_request_error', `the request body exceeds ${max} bytes`, RouterErrorCode.BODY_TOO_LARGE, CONNECTION_CLOSE);
    this.complete(x, 413);
  }

  /** @internal The body is in: parse, salt, hash, route. */
  start(x: Exchange, raw: Buffer): void {
    let body: Record<string, unknown>;
    try {
      const v: unknown = JSON.parse(raw.toString('utf8'));
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
      body = v as Record<string, unknown>;
    } catch (err) {
      this.error(x.res, 400, 'invalid_request_error', `the request body is not a JSON object: ${(err as Error).message}`, RouterErrorCode.INVALID_BODY);
      this.complete(x, 400);
      return;
    }
    const salt = x.tenant.salt;
    if (Object.hasOwn(body, 'cache_salt')) {
      // The client's salt would let it choose whose cache it shares: replace it.
      body.cache_salt = salt;
      x.payload = Buffer.from(JSON.stringify(body));
    } else {
      x.payload = spliceSalt(raw, salt, hasKeys(body));
    }
    const { blockTokens } = this.config;
    let blocks: ReturnType<typeof promptBlocks>;
    try {
      blocks = promptBlocks(body, blockTokens, salt);
    } catch (err) {
      // Valid JSON can still be beyond reading (nesting past the stack's depth).
      this.error(x.res, 400, 'invalid_request_error', `the prompt cannot be read: ${(err as Error).message}`, RouterErrorCode.INVALID_BODY);
      this.complete(x, 400);
      return;
    }
    x.route = { blocks: blocks.hashes, promptTokens: blocks.tokens, blockTokens };
    this.dispatch(x);
  }

  /** One attempt: choose a backend and send. */
  private dispatch(x: Exchange): void {
    if (x.clientGone) return;
    const ready = this.backends.ready();
    if (!ready.length) {
      if (x.lastError) return this.upstreamFailed(x);
      this.error(x.res, 503, 'server_error', 'no backend is ready', RouterErrorCode.NO_BACKEND, { 'retry-after': '1' });
      return this.complete(x, 503);
    }
    const bound = this.config.maxInFlightPerBackend;
    let candidates: Backend[] = [];
    for (const b of ready) if (b.inFlight < bound && !x.tried.includes(b)) candidates.push(b);
    // A retry goes to another backend when there is one; with none, the same one may take it
    // (a lone backend's reset keep-alive socket deserves a second try too).
    if (!candidates.length && x.tried.length) candidates = ready.filter((b) => b.inFlight < bound);
    if (!candidates.length) {
      if (x.lastError) return this.upstreamFailed(x);
      this.error(x.res, 429, 'rate_limit_error', `every ready backend has ${bound} requests in flight`, RouterErrorCode.BACKENDS_BUSY, { 'retry-after': '1' });
      return this.complete(x, 429);
    }
    const route = x.route;
    const decision = this.policy.choose(route, candidates, this.index);
    const b = candidates.find((c) => c.id === decision.backend) ?? candidates[0]!;
    const matched = b.id === decision.backend ? decision.matchedBlocks : this.index.match(b.id, route.blocks);
    const matchedTokens = Math.min(matched * route.blockTokens, route.promptTokens);
    if (x.attempt === 0) this.metrics.routed(route.blocks.length, matched, route.promptTokens, matchedTokens);
    // With KV events the engine says what it stored; without (or while its stream is down),
    // the routing history stands in.
    if (this.config.indexSource === IndexSource.History || !b.kvEventsLive) this.index.record(b.id, route.blocks);
    if (this.log?.isLevelEnabled('debug')) this.log.debug({ backend: b.id, tenant: x.tenant.name, reason: decision.reason, attempt: x.attempt }, 'routed');
    this.send(x, b, route.promptTokens - matchedTokens);
  }

  private send(x: Exchange, b: Backend, uncached: number): void {
    const attempt = new Attempt(this, x, b, uncached);
    x.attempt_ = attempt;
    const accept = x.accept;
    const lines = accept === undefined ? ANY_UPSTREAM_HEADERS : accept === JSON_TYPE ? JSON_UPSTREAM_HEADERS : accept === 'text/event-stream' ? SSE_UPSTREAM_HEADERS : `content-type: ${JSON_TYPE}\r\naccept: ${accept}\r\n`;
    try {
      attempt.conn = b.upstream.post(b.basePath + x.path, lines, x.payload, attempt);
    } catch (err) {
      // The backend's pool closed under us (it was removed a moment ago).
      attempt.onError(err as UpstreamError);
    }
  }

  /** @internal An attempt failed before its first byte: retry elsewhere if allowed, else answer. */
  failedEarly(x: Exchange, b: Backend, why: string, timedOut: boolean): void {
    if (x.clientGone) return;
    this.backends.reportFailure(b, why);
    this.metrics.backendFailure('before_first_byte');
    x.lastError = why;
    x.lastTimeout = timedOut;
    x.tried.push(b);
    if (x.attempt < this.config.retries) {
      x.attempt++;
      this.metrics.retry();
      this.dispatch(x);
    } else {
      this.upstreamFailed(x);
    }
  }

  /** @internal A response started and then failed: end the client's stream cleanly. */
  failedMidStream(x: Exchange, b: Backend, status: number, sse: boolean, why: string, timedOut: boolean): void {
    this.backends.reportFailure(b, why);
    this.metrics.backendFailure('mid_response');
    this.log?.warn({ backend: b.id, tenant: x.tenant.name, why }, 'response cut short by a backend failure');
    if (sse) {
      // A final event the client can read, then a proper end: never a hang.
      const code = timedOut ? RouterErrorCode.UPSTREAM_TIMEOUT : RouterErrorCode.UPSTREAM_ERROR;
      x.res.end(`\n\ndata: ${JSON.stringify({ error: { message: why, type: SSE_ERROR_TYPE, param: null, code } })}\n\n`);
      this.complete(x, status);
    } else {
      // A JSON body cut short cannot be made valid: reset, so the client sees the failure.
      x.res.destroy();
      this.complete(x, 502);
    }
  }

  /**
   * @internal Response headers for the client: the backend's (names as it spelled them,
   * repeats kept), less the hop-by-hop ones, as the flat list writeHead takes without
   * building an object. Returns whether the body is an event stream the router may end with
   * an error event of its own: SSE without a Content-Length (bytes past a declared length
   * would be read as the next response).
   */
  writeHead(x: Exchange, status: number, raw: readonly string[] | undefined): boolean {
    const h: string[] = [];
    let sse = false;
    let sized = false;
    if (raw) {
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const k = raw[i]!;
        const lower = k.toLowerCase();
        if (HOP_BY_HOP.has(lower)) continue;
        const v = raw[i + 1]!;
        if (lower === 'content-type' && v.startsWith('text/event-stream')) sse = true;
        else if (lower === 'content-length') sized = true;
        h.push(k, v);
      }
    }
    if (this.draining) h.push('connection', 'close');
    x.res.writeHead(status, h);
    return sse && !sized;
  }

  private upstreamFailed(x: Exchange): void {
    const timeout = x.lastTimeout;
    const status = timeout ? 504 : 502;
    this.error(x.res, status, 'server_error', `the backend failed before answering${x.tried.length > 1 ? ` (${x.tried.length} tried)` : ''}: ${x.lastError}`, timeout ? RouterErrorCode.UPSTREAM_TIMEOUT : RouterErrorCode.UPSTREAM_ERROR);
    this.complete(x, status);
  }

  /** Reads usage.prompt_tokens and prompt_tokens_details.cached_tokens from a response's tail. */
  /** @internal */
  usage(prev: Buffer | undefined, last: Buffer): void {
    let tail = last;
    if (last.indexOf(CACHED_TOKENS_KEY) < 0) {
      if (!prev || prev.indexOf(CACHED_TOKENS_KEY) < 0) return;
      tail = Buffer.concat([prev, last]);
    } else if (prev && last.indexOf(PROMPT_TOKENS_KEY) < 0) {
      tail = Buffer.concat([prev, last]);
    }
    if (tail.length > USAGE_TAIL_BYTES) tail = tail.subarray(tail.length - USAGE_TAIL_BYTES);
    const p = jsonIntegerAfter(tail, PROMPT_TOKENS_KEY);
    const c = jsonIntegerAfter(tail, CACHED_TOKENS_KEY);
    if (p !== undefined && c !== undefined) this.metrics.engineUsage(p, c);
  }

  /** @internal */
  complete(x: Exchange, status: number): void {
    if (x.finished) return;
    x.finished = true;
    x.tenant.inFlight--;
    this.active--;
    this.metrics.request(status, x.tenant.name);
    if (this.active === 0 && this.idleWaiters.length) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async models(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.tenants.authenticate(req.headers.authorization)) {
      this.error(res, 401, 'authentication_error', 'a valid API key is required (Authorization: Bearer <key>)', RouterErrorCode.UNAUTHORIZED, { 'www-authenticate': 'Bearer' });
      return;
    }
    const ready = this.backends.ready();
    if (!ready.length) {
      this.error(res, 503, 'server_error', 'no backend is ready', RouterErrorCode.NO_BACKEND, { 'retry-after': '1' });
      return;
    }
    const now = Date.now();
    let cached = this.modelsCache;
    if (!cached || now - cached.at > MODELS_CACHE_MS) {
      // The union over ready backends (replicas may serve different models, or be mid-rollout).
      const lists = await Promise.all(ready.map(async (b) => {
        try {
          const r = await b.pool.request({ path: `${b.basePath}/v1/models`, method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 });
          if (r.statusCode !== 200) {
            await r.body.dump();
            return [];
          }
          const j = (await r.body.json()) as { data?: unknown };
          return Array.isArray(j?.data) ? (j.data as { id?: unknown }[]) : [];
        } catch {
          return [];
        }
      }));
      const byId = new Map<string, unknown>();
      for (const list of lists) for (const m of list) if (m && typeof m.id === 'string' && !byId.has(m.id)) byId.set(m.id, m);
      cached = { at: now, body: Buffer.from(JSON.stringify({ object: 'list', data: [...byId.values()] })) };
      this.modelsCache = cached;
    }
    res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': cached.body.length });
    res.end(req.method === 'HEAD' ? undefined : cached.body);
  }

  close(): Promise<void> {
    this.closing ??= this.drain();
    return this.closing;
  }

  private closeIdleConnections(): void {
    this.server.closeIdleConnections();
    this.inbound.closeIdle();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    await this.link?.stop();
    const closed = new Promise<void>((r) => this.inbound.listener.close(() => r()));
    this.closeIdleConnections();
    if (this.active > 0) {
      // Keep-alive connections that finish their request are closed as they go idle.
      const sweep = setInterval(() => this.closeIdleConnections(), 100);
      const idle = new Promise<void>((r) => this.idleWaiters.push(r));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.drainTimeoutMs)));
      const late = await Promise.race([idle.then(() => false), timedOut]);
      clearTimeout(timer);
      clearInterval(sweep);
      if (late) this.log?.warn({ inFlight: this.active }, 'drain timed out; cutting the remaining requests');
    }
    this.server.closeAllConnections();
    this.inbound.closeAll();
    // Stops the node:http server's connection checks (it has no listening socket to close).
    this.server.close(noop);
    await closed;
    if (this.active > 0) await this.backends.destroy();
    else await this.backends.close();
  }
}

/**
 * One attempt of an exchange at one backend, as the upstream client's handler: the
 * response's chunks are written to the client as they arrive, with no intermediate stream,
 * promise or AbortSignal (the hot path's cost is mostly per-object overhead at this size).
 *
 * States: waiting (sent, nothing back) → streaming (first body byte written to the client)
 * → done. `settled` marks the attempt as over for the router (released, retried or
 * answered); undici callbacks arriving after that are ignored.
 *
 * One timer per attempt, never re-armed on the hot path: it first fires after the shorter of
 * the first-byte and idle timeouts; when it fires, the deadline that applies then (first
 * byte: the attempt's start + firstTokenTimeout; streaming: the last chunk + idleTimeout) is
 * checked, and a deadline not yet reached arms it again for the time left, never more than
 * the idle timeout (so a first byte arriving meanwhile cannot push its idle deadline past
 * the next check). Chunks only note their time.
 */
class Attempt implements UpstreamHandler {
  /** The connection the request went out on (set right after it was written). */
  conn: UpstreamConnection | undefined;
  private timer: NodeJS.Timeout;
  private readonly sentAt: number;
  private lastAt = 0;
  private paused = false;
  private timedOut = false;
  private settled = false;
  private released = false;
  private prefillOpen = true;
  private first = false;
  /** The response to the client was ended with the body's only chunk. */
  private ended = false;
  private sse = false;
  private status = 0;
  private headers: string[] | undefined;
  private prev: Buffer | undefined;
  private last: Buffer | undefined;

  constructor(private readonly core: RouterCore, private readonly x: Exchange, private readonly b: Backend, private readonly uncached: number) {
    b.inFlight++;
    b.outstandingPrefillTokens += uncached;
    const c = core.config;
    this.sentAt = performance.now();
    this.timer = setTimeout(onAttemptTimer, Math.min(c.firstTokenTimeoutMs, c.idleTimeoutMs), this);
  }

  /** The client went away: stop, free the backend's slot. */
  cancel(): void {
    if (this.settled) return;
    this.settled = true;
    this.release();
    this.conn?.abort(this);
  }

  /** The client's socket drained: read on. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.conn?.resume(this);
  }

  /** @internal The timer fired: time out, or wait on for the deadline that applies now. */
  tick(): void {
    if (this.settled) return;
    const c = this.core.config;
    const now = performance.now();
    const deadline = this.first ? this.lastAt + c.idleTimeoutMs : this.sentAt + c.firstTokenTimeoutMs;
    // Timers fire on libuv's millisecond clock: within a millisecond counts as reached.
    if (deadline - now >= 1) {
      this.timer = setTimeout(onAttemptTimer, Math.min(Math.ceil(deadline - now), c.idleTimeoutMs), this);
      return;
    }
    this.timedOut = true;
    const why = this.first ? `no data from the backend for ${c.idleTimeoutMs} ms` : `no response within ${c.firstTokenTimeoutMs} ms`;
    this.conn?.abort(this);
    this.fail(why);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    const b = this.b;
    b.inFlight--;
    if (this.prefillOpen) {
      this.prefillOpen = false;
      b.outstandingPrefillTokens -= this.uncached;
    }
  }

  private fail(why: string): void {
    if (this.settled) return;
    this.settled = true;
    this.release();
    if (this.x.clientGone) return;
    if (this.first) this.core.failedMidStream(this.x, this.b, this.status, this.sse, why, this.timedOut);
    else this.core.failedEarly(this.x, this.b, why, this.timedOut);
  }

  onHeaders(statusCode: number, headers: string[]): void {
    if (this.settled) return;
    if (statusCode >= 500) {
      if (this.x.attempt < this.core.config.retries) {
        // Nothing has reached the client yet: another backend may answer better.
        this.conn?.abort(this);
        this.fail(`HTTP ${statusCode}`);
        return;
      }
      this.core.backends.reportFailure(this.b, `HTTP ${statusCode}`);
    } else {
      this.core.backends.reportSuccess(this.b);
    }
    this.status = statusCode;
    this.headers = headers;
  }

  onData(chunk: Buffer, last: boolean): boolean {
    if (this.settled) return true;
    const x = this.x;
    const now = performance.now();
    this.lastAt = now;
    if (!this.first) {
      // The first byte: prefill is over, headers go out.
      this.first = true;
      if (this.prefillOpen) {
        this.prefillOpen = false;
        this.b.outstandingPrefillTokens -= this.uncached;
      }
      this.core.metrics.ttfb((now - x.started) / 1000);
      this.sse = this.core.writeHead(x, this.status, this.headers);
      this.headers = undefined;
      if (last) {
        // The whole answer at once (a short completion): headers and body in one write.
        this.last = chunk;
        this.ended = true;
        x.res.end(chunk);
        return true;
      }
      // Headers, the first bytes and whatever else arrives in the same tick go out in one
      // write: one syscall instead of two or three, no added delay.
      x.res.cork();
      process.nextTick(uncorkResponse, x.res);
    }
    this.prev = this.last;
    this.last = chunk;
    if (!x.res.write(chunk)) {
      this.paused = true;
      x.res.once('drain', onResDrain);
      return false;
    }
    return true;
  }

  onComplete(): void {
    if (this.settled) return;
    this.settled = true;
    this.release();
    const x = this.x;
    if (x.clientGone) return;
    if (!this.first) this.core.writeHead(x, this.status, this.headers);
    if (!this.ended) x.res.end();
    if (this.status === 200 && this.last) this.core.usage(this.prev, this.last);
    this.core.complete(x, this.status);
  }

  onError(err: UpstreamError): void {
    this.fail(err.message || String(err));
  }
}

function uncorkResponse(res: ClientResponse): void {
  res.uncork();
}

function onAttemptTimer(a: Attempt): void {
  a.tick();
}

const EMPTY = Buffer.alloc(0);
const PROMPT_TOKENS_KEY = Buffer.from('"prompt_tokens"');
const CACHED_TOKENS_KEY = Buffer.from('"cached_tokens"');

/** The integer after the first `key` and its colon in `buf` (JSON whitespace allowed), read without decoding the buffer. */
export function jsonIntegerAfter(buf: Buffer, key: Buffer): number | undefined {
  const at = buf.indexOf(key);
  if (at < 0) return undefined;
  let i = skipJsonSpace(buf, at + key.length);
  if (buf[i] !== 0x3a) return undefined;
  i = skipJsonSpace(buf, i + 1);
  const start = i;
  let n = 0;
  while (i < buf.length && buf[i]! >= 0x30 && buf[i]! <= 0x39) n = n * 10 + (buf[i++]! - 0x30);
  return i > start ? n : undefined;
}

function skipJsonSpace(buf: Buffer, i: number): number {
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0a || buf[i] === 0x0d)) i++;
  return i;
}
// The upstream request's header lines for the common Accept values.
const ANY_UPSTREAM_HEADERS = `content-type: ${JSON_TYPE}\r\naccept: */*\r\n`;
const JSON_UPSTREAM_HEADERS = `content-type: ${JSON_TYPE}\r\naccept: ${JSON_TYPE}\r\n`;
const SSE_UPSTREAM_HEADERS = `content-type: ${JSON_TYPE}\r\naccept: text/event-stream\r\n`;
const CONNECTION_CLOSE: OutgoingHttpHeaders = Object.freeze({ connection: 'close' });
/** Headers about one connection, not the response (RFC 9110 §7.6.1): never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection']);

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/**
 * The body with `"cache_salt": salt` added as its first member, without re-serializing it.
 * Only called when the body (a JSON object) has no cache_salt member of its own.
 */
export function spliceSalt(raw: Buffer, salt: string, nonEmpty: boolean): Buffer {
  let i = 0;
  // Skip a UTF-8 BOM and whitespace before the opening brace.
  if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) i = 3;
  while (i < raw.length && raw[i] !== 0x7b) i++;
  const member = Buffer.from(`"cache_salt":${JSON.stringify(salt)}${nonEmpty ? ',' : ''}`);
  return Buffer.concat([raw.subarray(i, i + 1), member, raw.subarray(i + 1)]);
}

function noop(): void {}
