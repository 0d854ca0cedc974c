// Opens the etcd store: one etcd3 client, keys under a prefix.

import { Etcd3 } from 'etcd3';
import type { Store } from '../store.ts';
import { etcdCall } from './errors.ts';
import { EtcdStore } from './etcd-store.ts';

export interface EtcdStoreOptions {
  /** host:port or http://host:port of each etcd member. */
  endpoints: string[];
  /**
   * Prepended to every key as it is: store key '/registry/x' becomes '/k8s4ai/registry/x'.
   * Stores sharing an etcd must not see each other's keys, so no store's prefix + key may
   * start with another store's prefix: '/k8s4ai' and '/k8s4ai-dev' are fine while every key
   * starts with '/', as API server keys do. Default '/k8s4ai'.
   */
  prefix?: string;
  /** How long to wait for a connection, in milliseconds. Default 5000. */
  dialTimeoutMs?: number;
}

export const DEFAULT_ETCD_PREFIX = '/k8s4ai';

/** Connects and checks that etcd answers; rejects with UNAVAILABLE when it does not. */
export async function openEtcdStore(opts: EtcdStoreOptions): Promise<Store> {
  const client = new Etcd3({
    hosts: opts.endpoints.map((e) => (/^\w+:\/\//.test(e) ? e : `http://${e}`)),
    dialTimeout: opts.dialTimeoutMs ?? 5000,
  });
  const store = new EtcdStore(client, opts.prefix ?? DEFAULT_ETCD_PREFIX);
  try {
    await etcdCall(`etcd at ${opts.endpoints.join(',')}`, () => store.currentRevision());
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
