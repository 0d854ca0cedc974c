// An API server over an in-memory store, driven with fastify's inject (no sockets).
import { createMemoryStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';
import { Registry } from '../../src/apiserver/registry.ts';
import { ALL_KINDS } from '../../src/api/kinds/index.ts';
import { createApiServer, type ApiServer } from '../../src/apiserver/server.ts';
import { TokenAuthenticator, hashToken } from '../../src/apiserver/auth.ts';
import { createLogger } from '../../src/lib/logger.ts';

export const ADMIN_TOKEN = 'admin-token';
export const TENANT_TOKEN = 'tenant-token';
export const G = '/apis/k8s4ai.io/v1alpha1';

export interface TestApi {
  store: Store;
  registry: Registry;
  server: ApiServer;
  call(method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startTestApi(opts: { historyRevisions?: number; bookmarkIntervalMs?: number } = {}): Promise<TestApi> {
  const store = await createMemoryStore({ historyRevisions: opts.historyRevisions });
  const registry = new Registry(store, ALL_KINDS);
  await registry.bootstrap();
  const server = createApiServer({
    registry,
    authenticator: new TokenAuthenticator(undefined, [
      { user: 'admin', sha256: hashToken(ADMIN_TOKEN), namespaces: ['*'] },
      { user: 'tenant', sha256: hashToken(TENANT_TOKEN), namespaces: ['team-a'] },
    ]),
    logger: createLogger({ level: 'silent' }),
    bookmarkIntervalMs: opts.bookmarkIntervalMs,
  });
  return {
    store,
    registry,
    server,
    async call(method, url, body, headers = {}) {
      const res = await server.app.inject({
        method: method as 'GET',
        url,
        ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
      });
      let parsed: unknown = res.body;
      try {
        parsed = JSON.parse(res.body);
      } catch {
        // not JSON (metrics, protobuf)
      }
      return { status: res.statusCode, body: parsed, headers: res.headers };
    },
    async close() {
      await server.close();
      registry.close();
      await store.close();
    },
  };
}

export function gang(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'k8s4ai.io/v1alpha1',
    kind: 'GangSchedulingGroup',
    metadata: { name },
    spec: { roles: [{ name: 'worker', replicas: 2, template: { command: ['python3', 'train.py'], resources: { gpus: 8 } } }], ...extra },
  };
}
