// Argument checks shared by every backend; each failure is a StoreError with code INVALID.

import type { ListOptions, TxnOp, WatchOptions } from '../store.ts';
import { invalid } from './errors.ts';

const isRevision = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw invalid('a key must be a non-empty string');
}

export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string') throw invalid('a prefix must be a string');
}

export function checkValue(value: unknown, key: string): asserts value is string {
  if (typeof value !== 'string') throw invalid(`the value of ${key} must be a string`, key);
}

export function checkExpectedRevision(revision: unknown, key: string): void {
  if (revision !== undefined && !isRevision(revision)) {
    throw invalid(`expectedRevision of ${key} must be a non-negative integer`, key);
  }
}

export function checkOp(op: TxnOp): void {
  checkKey(op.key);
  switch (op.op) {
    case 'create':
      checkValue(op.value, op.key);
      return;
    case 'update':
      checkValue(op.value, op.key);
      checkExpectedRevision(op.expectedRevision, op.key);
      return;
    case 'delete':
      checkExpectedRevision(op.expectedRevision, op.key);
      return;
    default:
      throw invalid(`unknown transaction op ${JSON.stringify((op as { op: unknown }).op)}`);
  }
}

/**
 * A transaction may touch each key once: its result is then well defined (one state per
 * op) and etcd, which refuses duplicate keys in a txn, behaves like the other backends.
 */
export function checkTxnOps(ops: unknown): asserts ops is TxnOp[] {
  if (!Array.isArray(ops)) throw invalid('a transaction takes an array of ops');
  const seen = new Set<string>();
  for (const op of ops as TxnOp[]) {
    checkOp(op);
    if (seen.has(op.key)) throw invalid(`a transaction may touch ${op.key} only once`, op.key);
    seen.add(op.key);
  }
}

export function checkListOptions(opts: ListOptions): void {
  if (opts.limit !== undefined && !isRevision(opts.limit)) throw invalid('limit must be a non-negative integer');
  if (opts.startAfter !== undefined && typeof opts.startAfter !== 'string') throw invalid('startAfter must be a string');
  if (opts.revision !== undefined && !isRevision(opts.revision)) throw invalid('revision must be a non-negative integer');
}

export function checkWatchOptions(opts: WatchOptions): void {
  if (opts.afterRevision !== undefined && !isRevision(opts.afterRevision)) {
    throw invalid('afterRevision must be a non-negative integer');
  }
}

export function checkCompactRevision(revision: unknown): asserts revision is number {
  if (!isRevision(revision)) throw invalid('a compaction revision must be a non-negative integer');
}
