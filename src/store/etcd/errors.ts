// Turns etcd3 client errors into StoreErrors with the stable codes.

import type { StoreError } from '../store.ts';
import { isStoreError } from '../store.ts';
import { gone, invalid, unavailable } from '../core/errors.ts';

export const isCompactedError = (err: unknown): boolean =>
  err instanceof Error && err.message.includes('required revision has been compacted');

export const isFutureRevisionError = (err: unknown): boolean =>
  err instanceof Error && err.message.includes('required revision is a future revision');

export function fromEtcdError(err: unknown, what: string): StoreError {
  if (isStoreError(err)) return err;
  if (isCompactedError(err)) return gone(`${what}: the revision is compacted`);
  if (isFutureRevisionError(err)) return invalid(`${what}: the revision is newer than the current one`);
  const message = err instanceof Error ? err.message : String(err);
  if (/too many operations in txn|duplicate key given in txn|request is too large/.test(message)) {
    return invalid(`${what}: ${message}`);
  }
  // Anything else (connection refused, timeouts, leader changes) means etcd is not
  // serving us right now; callers retry or re-watch.
  return unavailable(what, err);
}

/** Runs an etcd call, converting its failure into a StoreError. */
export async function etcdCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw fromEtcdError(err, what);
  }
}
