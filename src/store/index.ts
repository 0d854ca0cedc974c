// Opening a store from a URL, and the storage layer's public surface.
//
//   memory://                                 in-memory, gone on close
//   sqlite:///var/lib/k8s4ai/state.db         SQLite file (absolute path)
//   sqlite://:memory:                         private in-memory SQLite database
//   /var/lib/k8s4ai/state.db, ./state.db      a plain path means SQLite too
//   etcd://host:2379[,host2:2379]?prefix=/k8s4ai
//
// Query parameters: historyRevisions=N (memory, SQLite), prefix=... and
// dialTimeoutMs=N (etcd).

import type { Store } from './store.ts';
import { invalid } from './core/errors.ts';
import { createMemoryStore } from './memory/index.ts';
import { openSqliteStore } from './sqlite/index.ts';
import { openEtcdStore } from './etcd/index.ts';

export * from './store.ts';
export { createMemoryStore, type MemoryStoreOptions } from './memory/index.ts';
export { openSqliteStore, type SqliteStoreOptions } from './sqlite/index.ts';
export { openEtcdStore, type EtcdStoreOptions, DEFAULT_ETCD_PREFIX } from './etcd/index.ts';
export { DEFAULT_HISTORY_REVISIONS } from './core/log-store.ts';

/** Splits `scheme://rest?query` without URL's host rules (etcd lists several hosts). */
function parseStoreUrl(url: string): { scheme: string; rest: string; params: URLSearchParams } | undefined {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^?]*)(?:\?(.*))?$/i.exec(url);
  if (!match) return undefined;
  return { scheme: match[1]!.toLowerCase(), rest: decodeURIComponent(match[2]!), params: new URLSearchParams(match[3] ?? '') };
}

function intParam(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`store URL parameter ${name} must be a non-negative integer, not ${raw}`);
  return n;
}

export async function openStore(url: string): Promise<Store> {
  const parsed = parseStoreUrl(url);
  if (!parsed) {
    if (url.length === 0) throw invalid('a store URL is required');
    return openSqliteStore({ path: url });
  }
  const { scheme, rest, params } = parsed;
  const historyRevisions = intParam(params, 'historyRevisions');
  switch (scheme) {
    case 'memory':
      return createMemoryStore({ historyRevisions });
    case 'sqlite':
    case 'file':
      if (rest.length === 0) throw invalid(`store URL ${url} names no database file`);
      return openSqliteStore({ path: rest, historyRevisions });
    case 'etcd': {
      const endpoints = rest.split(',').map((e) => e.replace(/\/+$/, '')).filter((e) => e.length > 0);
      if (endpoints.length === 0) throw invalid(`store URL ${url} names no etcd endpoint`);
      return openEtcdStore({
        endpoints,
        prefix: params.get('prefix') ?? undefined,
        dialTimeoutMs: intParam(params, 'dialTimeoutMs'),
      });
    }
    default:
      throw invalid(`unknown store URL scheme ${scheme}:// (use memory://, sqlite:///path or etcd://host:port)`);
  }
}
