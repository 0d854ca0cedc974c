// The router's backends: one undici Pool each (keep-alive connections reused across
// requests), readiness from active health checks, passive ejection, and the per-backend load
// the routing policy weighs (requests in flight, prompt tokens not yet prefilled).
//
// Readiness: a backend starts not ready and turns ready after one successful `GET /health`.
// Active checks run every `healthIntervalMs`; `unhealthyThreshold` failures in a row take it
// out. Passively, `ejectAfter` request failures in a row (connection errors, timeouts before
// the first byte, 5xx) eject it for at least `ejectMs`; the next successful health check
// after that re-admits it. So a dead engine stops receiving traffic after a few requests even
// between checks, and one that recovers is back within a check interval.
//
// KV events (index.source KVEvents): the backend's `GET /v1/kv/events` stream (NDJSON, or SSE
// `data:` lines) of `{type: 'stored'|'removed'|'cleared', hashes: [...]}` is followed and
// handed to `onKvEvent`. Best effort: while a backend has no live stream (engine without the
// endpoint, stream dropped) `kvEventsLive` is false and the router falls back to recording its
// routing history for that backend; on each (re)connect `onKvReset` fires first, because
// events missed during the gap make the old picture unreliable.
import { Pool } from 'undici';
import { UpstreamPool } from './upstream.ts';
import type { Logger } from 'pino';
import type { BackendLoad } from './types.ts';

export const BackendErrorCode = {
  INVALID_URL: 'K8S4AI_ROUTER_INVALID_BACKEND_URL',
} as const;

export class BackendConfigError extends Error {
  readonly code = BackendErrorCode.INVALID_URL;
  constructor(message: string) {
    super(message);
    this.name = 'BackendConfigError';
  }
}

export interface KvEvent {
  type: 'stored' | 'removed' | 'cleared';
  hashes: string[];
}

export interface BackendSetOptions {
  /** Between active health checks; default 2000. */
  healthIntervalMs?: number;
  /** Path of the health check; default /health. */
  healthPath?: string;
  /** Active check failures in a row before a backend is taken out; default 2. */
  unhealthyThreshold?: number;
  /** Request failures in a row before a backend is ejected; default 3. */
  ejectAfter?: number;
  /** Shortest ejection; default 5000. */
  ejectMs?: number;
  /** TCP connect timeout for every connection to a backend; default 2000. */
  connectTimeoutMs?: number;
  /** Follow each backend's KV events stream. */
  kvEvents?: boolean;
  onKvEvent?(backend: Backend, event: KvEvent): void;
  onKvReset?(backend: Backend): void;
  /** A backend left the set (its index entries can go). */
  onRemove?(backend: Backend): void;
  log?: Logger;
}

/** Normalizes a backend URL: origin plus an optional base path, no trailing slash. */
export function normalizeBackendUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new BackendConfigError(`backend "${raw}" is not a URL (want http://host:port)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BackendConfigError(`backend "${raw}": only http:// and https:// are supported`);
  if (u.search || u.hash || u.username) throw new BackendConfigError(`backend "${raw}": no query, fragment or credentials, please`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

export class Backend implements BackendLoad {
  readonly id: string;
  readonly url: string;
  /** Prefix of every request path (a backend URL may carry one). */
  readonly basePath: string;
  /** Health checks, /v1/models and KV events. */
  readonly pool: Pool;
  /** The proxied completions (see upstream.ts for why not undici). */
  readonly upstream: UpstreamPool;
  ready = false;
  inFlight = 0;
  outstandingPrefillTokens = 0;
  kvUtilization: number | undefined = undefined;
  /** Whether a KV events stream from this backend is connected now. */
  kvEventsLive = false;
  healthFailures = 0;
  requestFailures = 0;
  ejectedUntil = 0;
  removed = false;
  lastError: string | undefined;
  /** @internal The health check in progress. */ checking: Promise<void> | undefined;
  /** @internal */ kvAbort: AbortController | undefined;

  constructor(url: string, connectTimeoutMs: number) {
    this.id = url;
    this.url = url;
    const u = new URL(url);
    this.basePath = u.pathname === '/' ? '' : u.pathname;
    // Unbounded connections: the router's own bound (maxInFlightPerBackend) limits them, and
    // a long SSE stream must never make a short request wait for a free socket.
    // undici's keep-alive defaults stay: a shorter idle timeout than the engine's (uvicorn: 5 s)
    // keeps the router from reusing a socket the engine is closing.
    this.pool = new Pool(u.origin, { connections: null, connectTimeout: connectTimeoutMs });
    this.upstream = new UpstreamPool(u.origin, { connectTimeoutMs });
  }
}

export class BackendSet {
  private readonly backends = new Map<string, Backend>();
  private readonly opts: Required<Pick<BackendSetOptions, 'healthIntervalMs' | 'healthPath' | 'unhealthyThreshold' | 'ejectAfter' | 'ejectMs' | 'connectTimeoutMs'>> & BackendSetOptions;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The ready backends, rebuilt when readiness changes (read on every request). */
  private readyList: Backend[] = [];

  constructor(opts: BackendSetOptions = {}) {
    this.opts = { healthIntervalMs: 2000, healthPath: '/health', unhealthyThreshold: 2, ejectAfter: 3, ejectMs: 5000, connectTimeoutMs: 2000, ...opts };
    this.timer = setInterval(() => void this.checkAll(), this.opts.healthIntervalMs);
    this.timer.unref();
  }

  /** Every backend, ready or not. */
  all(): Backend[] {
    return [...this.backends.values()];
  }

  ready(): readonly Backend[] {
    return this.readyList;
  }

  get(id: string): Backend | undefined {
    return this.backends.get(id);
  }

  get size(): number {
    return this.backends.size;
  }

  /** Makes the set exactly `urls`: new ones are added (and checked at once), missing ones removed. */
  set(urls: readonly string[]): void {
    if (this.closed) return;
    const want = new Set(urls.map(normalizeBackendUrl));
    for (const [id, b] of this.backends) if (!want.has(id)) this.remove(b);
    for (const url of want) {
      if (this.backends.has(url)) continue;
      const b = new Backend(url, this.opts.connectTimeoutMs);
      this.backends.set(url, b);
      this.opts.log?.info({ backend: url }, 'backend added');
      void this.check(b);
      if (this.opts.kvEvents) void this.followKvEvents(b);
    }
  }

  /** Turns KV event following on or off (index.source changed). */
  setKvEvents(on: boolean): void {
    if (Boolean(this.opts.kvEvents) === on) return;
    this.opts.kvEvents = on;
    for (const b of this.backends.values()) {
      if (on) void this.followKvEvents(b);
      else b.kvAbort?.abort();
    }
  }

  private remove(b: Backend): void {
    this.backends.delete(b.id);
    b.removed = true;
    b.kvAbort?.abort();
    this.setReady(b, false);
    this.opts.onRemove?.(b);
    this.opts.log?.info({ backend: b.id }, 'backend removed');
    // close() lets requests in flight (streams included) finish before the sockets go.
    void b.pool.close().catch(() => undefined);
    b.upstream.close();
  }

  private setReady(b: Backend, ready: boolean): void {
    const next = ready && !b.removed;
    if (b.ready === next) return;
    b.ready = next;
    this.readyList = [...this.backends.values()].filter((x) => x.ready);
  }

  /** A request reached the backend and got a non-5xx answer. */
  reportSuccess(b: Backend): void {
    b.requestFailures = 0;
  }

  /** A request failed at the backend (connection error, timeout, 5xx). */
  reportFailure(b: Backend, why: string): void {
    b.lastError = why;
    b.requestFailures++;
    if (b.ready && b.requestFailures >= this.opts.ejectAfter) {
      b.ejectedUntil = Date.now() + this.opts.ejectMs;
      this.setReady(b, false);
      this.opts.log?.warn({ backend: b.id, failures: b.requestFailures, why }, 'backend ejected after consecutive failures');
    }
  }

  /** Runs a health check of every backend now; resolves when all answered. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.backends.values()].map((b) => this.check(b)));
  }

  /** A health check of `b` (joins the one in progress). */
  private check(b: Backend): Promise<void> {
    if (b.removed || this.closed) return Promise.resolve();
    b.checking ??= this.runCheck(b).finally(() => (b.checking = undefined));
    return b.checking;
  }

  private async runCheck(b: Backend): Promise<void> {
    let ok = false;
    let why = '';
    try {
      const timeout = Math.max(this.opts.connectTimeoutMs, 1000);
      const res = await b.pool.request({ path: `${b.basePath}${this.opts.healthPath}`, method: 'GET', headersTimeout: timeout, bodyTimeout: timeout });
      await res.body.dump();
      ok = res.statusCode >= 200 && res.statusCode < 300;
      if (!ok) why = `health check: HTTP ${res.statusCode}`;
    } catch (err) {
      why = `health check: ${(err as Error).message}`;
    }
    if (b.removed) return;
    if (ok) {
      b.healthFailures = 0;
      if (!b.ready && Date.now() >= b.ejectedUntil) {
        b.requestFailures = 0;
        this.setReady(b, true);
        this.opts.log?.info({ backend: b.id }, 'backend ready');
      }
    } else {
      b.lastError = why;
      b.healthFailures++;
      if (b.ready && b.healthFailures >= this.opts.unhealthyThreshold) {
        this.setReady(b, false);
        this.opts.log?.warn({ backend: b.id, why }, 'backend not ready: health checks failing');
      }
    }
  }

  private async followKvEvents(b: Backend): Promise<void> {
    if (b.kvAbort) return;
    const ac = new AbortController();
    b.kvAbort = ac;
    let missingSince = 0;
    while (!ac.signal.aborted && !b.removed && !this.closed && this.opts.kvEvents) {
      let wait = 1000;
      try {
        const res = await b.pool.request({ path: `${b.basePath}/v1/kv/events`, method: 'GET', headers: { accept: 'application/x-ndjson, text/event-stream' }, signal: ac.signal, bodyTimeout: 0, headersTimeout: 10_000 });
        if (res.statusCode === 404 || res.statusCode === 405 || res.statusCode === 501) {
          await res.body.dump();
          // An engine without KV events: history stands in; look again now and then.
          if (!missingSince) this.opts.log?.info({ backend: b.id }, 'backend publishes no KV events; routing history stands in');
          missingSince ||= Date.now();
          wait = 30_000;
        } else if (res.statusCode >= 300) {
          await res.body.dump();
        } else {
          missingSince = 0;
          this.opts.onKvReset?.(b);
          b.kvEventsLive = true;
          let buf = '';
          res.body.setEncoding('utf8');
          for await (const chunk of res.body as AsyncIterable<string>) {
            buf += chunk;
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              this.kvLine(b, line);
            }
          }
        }
      } catch {
        // Dropped stream or unreachable engine: reconnect below.
      } finally {
        b.kvEventsLive = false;
      }
      if (ac.signal.aborted) break;
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        t.unref();
        ac.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
    if (b.kvAbort === ac) b.kvAbort = undefined;
  }

  private kvLine(b: Backend, line: string): void {
    if (!line || line.startsWith(':') || line.startsWith('event:') || line.startsWith('id:')) return;
    const text = line.startsWith('data:') ? line.slice(5).trim() : line;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    const list = Array.isArray(parsed) ? parsed : Array.isArray((parsed as { events?: unknown })?.events) ? (parsed as { events: unknown[] }).events : [parsed];
    for (const e of list as Array<Partial<KvEvent> & { kvUtilization?: unknown }>) {
      if (!e || typeof e !== 'object') continue;
      if (typeof e.kvUtilization === 'number' && e.kvUtilization >= 0 && e.kvUtilization <= 1) b.kvUtilization = e.kvUtilization;
      if ((e.type === 'stored' || e.type === 'removed') && Array.isArray(e.hashes)) this.opts.onKvEvent?.(b, { type: e.type, hashes: e.hashes.map(String) });
      else if (e.type === 'cleared') this.opts.onKvEvent?.(b, { type: 'cleared', hashes: [] });
    }
  }

  /** Lets requests in flight finish, then closes every connection. */
  close(): Promise<void> {
    return this.shutdown(false);
  }

  /** Drops every connection now (tests, and a drain that ran out of time). */
  destroy(): Promise<void> {
    return this.shutdown(true);
  }

  private async shutdown(now: boolean): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const all = [...this.backends.values()];
    for (const b of all) {
      b.kvAbort?.abort();
      if (now) b.upstream.destroy();
      else b.upstream.close();
    }
    await Promise.all(all.map((b) => (now ? b.pool.destroy() : b.pool.close()).catch(() => undefined)));
  }
}
