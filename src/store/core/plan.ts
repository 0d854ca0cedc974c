// Turns a transaction into the changes it makes, or the error that refuses it.

import type { KeyValue, TxnOp, TxnResult } from '../store.ts';
import type { PlannedChange } from './change.ts';
import { firstFailure } from './txn-rules.ts';

export interface PlannedTxn {
  changes: PlannedChange[];
  result: TxnResult;
}

/**
 * Checks every op against the keys' states (read through `lookup`) and, when all pass,
 * gives op i the revision `firstRevision + i`: like kine, each change gets its own
 * revision and the transaction commits at the last one. Throws the first op's error.
 * `ops` must touch each key once (see checkTxnOps), so every op sees the state from
 * before the transaction.
 */
export function planTxn(
  ops: readonly TxnOp[],
  lookup: (key: string) => KeyValue | undefined,
  firstRevision: number,
): PlannedTxn {
  const states = ops.map((op) => lookup(op.key));
  const failure = firstFailure(ops, states);
  if (failure) throw failure;

  const changes = ops.map((op, i): PlannedChange => {
    const revision = firstRevision + i;
    const prev = states[i];
    switch (op.op) {
      case 'create':
        return { type: 'put', kv: { key: op.key, value: op.value, createRevision: revision, modRevision: revision }, prev };
      case 'update':
        return { type: 'put', kv: { key: op.key, value: op.value, createRevision: prev!.createRevision, modRevision: revision }, prev };
      case 'delete':
        return { type: 'delete', kv: { ...prev!, modRevision: revision }, prev };
    }
  });
  return {
    changes,
    result: { revision: firstRevision + ops.length - 1, results: changes.map((c) => ({ ...c.kv })) },
  };
}
