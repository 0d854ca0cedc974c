// A typed HTTP client for the k8s4ai API (and any Kubernetes-style server): CRUD, patch,
// watch as a stream of events. The CLI and out-of-process components use it.
import { Agent, request, type Dispatcher } from 'undici';
import type { KindDefinition } from '../api/kind.ts';
import { apiVersionOf } from '../api/kind.ts';
import type { KubeObject, KubeList } from '../api/meta.ts';
import type { Status } from '../apiserver/errors.ts';
import { readKubeconfig, type ResolvedKubeconfig } from '../lib/kubeconfig.ts';

export class ClientError extends Error {
  readonly code = 'K8S4AI_CLIENT';
  readonly statusCode: number;
  readonly status: Status | undefined;
  constructor(statusCode: number, status: Status | undefined, fallback: string) {
    super(status?.message ?? fallback);
    this.name = 'ClientError';
    this.statusCode = statusCode;
    this.status = status;
  }
  get reason(): string {
    return this.status?.reason ?? `HTTP${this.statusCode}`;
  }
}

export type PatchContentType = 'application/merge-patch+json' | 'application/json-patch+json';

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject | Status;
}

export interface ClientWatch {
  close(): void;
  /** Resolves when the stream ends (server closed it, error, or close()). */
  done: Promise<void>;
}

export interface ListParams {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export class ApiClient {
  readonly config: ResolvedKubeconfig;
  private readonly dispatcher: Dispatcher;

  constructor(config: ResolvedKubeconfig) {
    this.config = config;
    this.dispatcher = new Agent({
      connect: config.caPem ? { ca: config.caPem } : config.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {},
      keepAliveTimeout: 30_000,
    });
  }

  static fromKubeconfig(path: string, context?: string): ApiClient {
    return new ApiClient(readKubeconfig(path, context));
  }

  get namespace(): string {
    return this.config.namespace;
  }

  path(def: KindDefinition, namespace?: string, name?: string, subresource?: string): string {
    const base = def.group ? `/apis/${apiVersionOf(def)}` : '/api/v1';
    const ns = def.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${base}${ns}/${def.plural}${name ? `/${encodeURIComponent(name)}` : ''}${subresource ? `/${subresource}` : ''}`;
  }

  async request<T>(method: Dispatcher.HttpMethod, path: string, opts: { body?: unknown; contentType?: string; accept?: string; query?: Record<string, string | number | undefined> } = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await res.body.text();
    const parsed = text ? safeJson(text) : undefined;
    if (res.statusCode >= 400) {
      const status = parsed && (parsed as Status).kind === 'Status' ? (parsed as Status) : undefined;
      throw new ClientError(res.statusCode, status, `${method} ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    }
    return parsed as T;
  }

  private async send(method: Dispatcher.HttpMethod, path: string, opts: { body?: unknown; contentType?: string; accept?: string; query?: Record<string, string | number | undefined> }) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') qs.set(k, String(v));
    const url = `${this.config.server}${path}${qs.size ? `?${qs}` : ''}`;
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    try {
      return await request(url, { method, headers, body, dispatcher: this.dispatcher });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ECONNREFUSED' ? 'connection refused (is `k8s4ai up` running?)' : e.message;
      throw new ClientError(0, undefined, `cannot reach the API server at ${this.config.server}: ${why}`);
    }
  }

  get(def: KindDefinition, namespace: string | undefined, name: string): Promise<KubeObject> {
    return this.request('GET', this.path(def, namespace, name));
  }

  list(def: KindDefinition, namespace: string | undefined, params: ListParams = {}): Promise<KubeList> {
    return this.request('GET', this.path(def, namespace), { query: { ...params } });
  }

  /** Every object, following continue tokens. */
  async listAll(def: KindDefinition, namespace: string | undefined, params: Omit<ListParams, 'continue'> = {}): Promise<KubeList> {
    const first = await this.list(def, namespace, { limit: 500, ...params });
    let cont = first.metadata.continue;
    while (cont) {
      const page = await this.list(def, namespace, { limit: 500, ...params, continue: cont });
      first.items.push(...page.items);
      cont = page.metadata.continue;
    }
    return first;
  }

  create(def: KindDefinition, namespace: string | undefined, obj: unknown, query: Record<string, string> = {}): Promise<KubeObject> {
    return this.request('POST', this.path(def, namespace), { body: obj, query });
  }

  update(def: KindDefinition, namespace: string | undefined, name: string, obj: unknown, subresource?: 'status'): Promise<KubeObject> {
    return this.request('PUT', this.path(def, namespace, name, subresource), { body: obj });
  }

  patch(def: KindDefinition, namespace: string | undefined, name: string, patch: unknown, type: PatchContentType = 'application/merge-patch+json', subresource?: 'status'): Promise<KubeObject> {
    return this.request('PATCH', this.path(def, namespace, name, subresource), { body: patch, contentType: type });
  }

  delete(def: KindDefinition, namespace: string | undefined, name: string, propagationPolicy: 'Background' | 'Foreground' | 'Orphan' = 'Background'): Promise<KubeObject> {
    return this.request('DELETE', this.path(def, namespace, name), { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy } });
  }

  /** Streams watch events; `onEvent` sees them in order. */
  async watch(
    def: KindDefinition,
    namespace: string | undefined,
    params: { resourceVersion?: string; labelSelector?: string; fieldSelector?: string; timeoutSeconds?: number; allowWatchBookmarks?: boolean },
    onEvent: (e: WatchEvent) => void,
    accept = 'application/json',
  ): Promise<ClientWatch> {
    const ac = new AbortController();
    const qs = new URLSearchParams({ watch: 'true' });
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') qs.set(k, String(v));
    const headers: Record<string, string> = { accept };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    let res;
    try {
      res = await request(`${this.config.server}${this.path(def, namespace)}?${qs}`, { method: 'GET', headers, dispatcher: this.dispatcher, signal: ac.signal });
    } catch (err) {
      throw new ClientError(0, undefined, `cannot reach the API server at ${this.config.server}: ${(err as Error).message}`);
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      const parsed = safeJson(text) as Status | undefined;
      throw new ClientError(res.statusCode, parsed?.kind === 'Status' ? parsed : undefined, `watch failed: HTTP ${res.statusCode}`);
    }
    const body = res.body;
    const done = (async () => {
      let buffer = '';
      try {
        for await (const chunk of body) {
          buffer += chunk.toString();
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            if (line) onEvent(JSON.parse(line) as WatchEvent);
          }
        }
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err;
      }
    })();
    return {
      close: () => ac.abort(),
      done: done.catch(() => undefined),
    };
  }

  /**
   * A GET whose body is read as it arrives (Task logs): resolves once the server answers
   * 2xx, with the body; `signal` ends it early. Failures throw ClientError, as request() does.
   */
  async stream(path: string, opts: { query?: Record<string, string | number | undefined>; accept?: string; signal?: AbortSignal } = {}): Promise<Dispatcher.ResponseData['body']> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') qs.set(k, String(v));
    const headers: Record<string, string> = { accept: opts.accept ?? '*/*' };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    let res;
    try {
      // No body timeout: a followed log may stay quiet for as long as its process does.
      res = await request(`${this.config.server}${path}${qs.size ? `?${qs}` : ''}`, { method: 'GET', headers, dispatcher: this.dispatcher, signal: opts.signal, bodyTimeout: 0 });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ECONNREFUSED' ? 'connection refused (is `k8s4ai up` running?)' : e.message;
      throw new ClientError(0, undefined, `cannot reach the API server at ${this.config.server}: ${why}`);
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      const parsed = safeJson(text) as Status | undefined;
      throw new ClientError(res.statusCode, parsed?.kind === 'Status' ? parsed : undefined, `GET ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    }
    return res.body;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
