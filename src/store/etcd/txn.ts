// Store transactions as single etcd Txns: one compare per precondition, all writes in the
// success branch (one etcd revision for the whole transaction), and a read of every key
// in the failure branch so a refusal can be explained as NOT_FOUND, ALREADY_EXISTS or
// CONFLICT with the same rules as the other backends.

import type { ICompare, IRequestOp, ITxnRequest, ITxnResponse } from 'etcd3';
import type { KeyValue, TxnOp, TxnResult } from '../store.ts';
import { StoreError, StoreErrorCode } from '../store.ts';
import { firstFailure } from '../core/txn-rules.ts';
import type { Keyspace } from './keyspace.ts';
import { toRevision } from './keyspace.ts';

function preconditions(op: TxnOp, key: Buffer): ICompare[] {
  // mod_revision is 0 exactly when the key does not exist.
  if (op.op === 'create') return [{ key, target: 'Mod', result: 'Equal', mod_revision: 0 }];
  const compares: ICompare[] = [{ key, target: 'Mod', result: 'Greater', mod_revision: 0 }];
  if (op.expectedRevision !== undefined) {
    compares.push({ key, target: 'Mod', result: 'Equal', mod_revision: op.expectedRevision });
  }
  return compares;
}

function write(op: TxnOp, key: Buffer): IRequestOp {
  // prev_kv gives an update its createRevision and a delete its last value.
  return op.op === 'delete'
    ? { request_delete_range: { key, prev_kv: true } }
    : { request_put: { key, value: Buffer.from(op.value), prev_kv: true } };
}

export function buildTxn(ops: readonly TxnOp[], keyspace: Keyspace): ITxnRequest {
  const keys = ops.map((op) => keyspace.encode(op.key));
  return {
    compare: ops.flatMap((op, i) => preconditions(op, keys[i]!)),
    success: ops.map((op, i) => write(op, keys[i]!)),
    failure: keys.map((key) => ({ request_range: { key } })),
  };
}

/** The committed transaction's result; every op shares the Txn's revision. */
export function txnResult(ops: readonly TxnOp[], res: ITxnResponse, keyspace: Keyspace): TxnResult {
  const revision = toRevision(res.header.revision);
  const results = ops.map((op, i): KeyValue => {
    const response = res.responses[i]!;
    if (op.op === 'create') return { key: op.key, value: op.value, createRevision: revision, modRevision: revision };
    if (op.op === 'update') {
      const prev = keyspace.toKeyValue(response.response_put.prev_kv);
      return { key: op.key, value: op.value, createRevision: prev.createRevision, modRevision: revision };
    }
    const prev = keyspace.toKeyValue(response.response_delete_range.prev_kvs[0]!);
    return { ...prev, modRevision: revision };
  });
  return { revision, results };
}

/** Why etcd refused the transaction, from the key states its failure branch read. */
export function txnRefusal(ops: readonly TxnOp[], res: ITxnResponse, keyspace: Keyspace): StoreError {
  const states = res.responses.map((r) => {
    const kv = r.response_range.kvs[0];
    return kv ? keyspace.toKeyValue(kv) : undefined;
  });
  return (
    firstFailure(ops, states) ??
    // The failure branch runs atomically with the compares, so this cannot happen.
    new StoreError(StoreErrorCode.CONFLICT, 'etcd refused the transaction but every precondition holds')
  );
}
