// What makes one transaction op fail, given the key's state before the transaction.
// The log engine checks ops with it before writing; the etcd backend uses it to explain
// which compare failed after etcd refused a transaction.

import type { KeyValue, StoreError, TxnOp } from '../store.ts';
import { alreadyExists, conflict, notFound } from './errors.ts';

export function opFailure(op: TxnOp, current: KeyValue | undefined): StoreError | undefined {
  if (op.op === 'create') return current ? alreadyExists(op.key) : undefined;
  if (!current) return notFound(op.key);
  if (op.expectedRevision !== undefined && op.expectedRevision !== current.modRevision) {
    return conflict(op.key, op.expectedRevision, current.modRevision);
  }
  return undefined;
}

/** The first op's failure, in op order; `states` holds each op's key state, in the same order. */
export function firstFailure(ops: readonly TxnOp[], states: readonly (KeyValue | undefined)[]): StoreError | undefined {
  for (let i = 0; i < ops.length; i++) {
    const failure = opFailure(ops[i]!, states[i]);
    if (failure) return failure;
  }
  return undefined;
}
