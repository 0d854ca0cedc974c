// A thin keep-alive HTTP client for the benchmark: one undici Pool per phase, one
// connection per concurrent client, no pipelining (one request in flight per connection).

import { Pool } from 'undici';

export const TASKS = (namespace: string) => `/apis/k8s4ai.io/v1alpha1/namespaces/${namespace}/tasks`;

export interface HttpTarget {
  url: string;
  token: string;
}

export interface Reply {
  status: number;
  body: string;
}

export class Http {
  readonly pool: Pool;
  private readonly auth: string;

  constructor(target: HttpTarget, connections: number) {
    this.pool = new Pool(target.url, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 600_000,
      headersTimeout: 60_000,
      bodyTimeout: 120_000,
    });
    this.auth = `Bearer ${target.token}`;
  }

  /** Sends a request and reads the whole body as text. */
  async call(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, contentType = 'application/json'): Promise<Reply> {
    const res = await this.pool.request({
      method,
      path,
      headers: body === undefined ? { authorization: this.auth } : { authorization: this.auth, 'content-type': contentType },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.statusCode, body: await res.body.text() };
  }

  /**
   * Sends a request and discards the body unless the status differs from `expected` (the
   * cheapest way for the load generator to check a write; the body is still read off the
   * socket in full).
   */
  async expect(method: 'POST' | 'PUT' | 'PATCH', path: string, body: string, expected: number, contentType = 'application/json'): Promise<Reply> {
    const res = await this.pool.request({
      method,
      path,
      headers: { authorization: this.auth, 'content-type': contentType },
      body,
    });
    if (res.statusCode === expected) {
      await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
      return { status: res.statusCode, body: '' };
    }
    return { status: res.statusCode, body: await res.body.text() };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

/** Creates a namespace; an existing one is fine. */
export async function ensureNamespace(http: Http, name: string): Promise<void> {
  const res = await http.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  if (res.status !== 201 && res.status !== 409) throw new Error(`cannot create namespace ${name}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
}

/** A one-line description of a failed reply, for error samples. */
export function describe(res: Reply): string {
  try {
    const status = JSON.parse(res.body) as { reason?: string; message?: string };
    return `HTTP ${res.status} ${status.reason ?? ''}: ${status.message ?? ''}`.slice(0, 300);
  } catch {
    return `HTTP ${res.status} ${res.body.slice(0, 200)}`;
  }
}
