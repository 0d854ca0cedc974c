// create, update and delete as one-op transactions, for stores whose txn() does the work:
// the single-key writes then follow exactly the same rules as transactions.

import type { KeyValue, TxnOp, TxnResult } from '../store.ts';

export abstract class SingleOpWrites {
  abstract txn(ops: TxnOp[]): Promise<TxnResult>;

  create(key: string, value: string): Promise<KeyValue> {
    return this.writeOne({ op: 'create', key, value });
  }

  update(key: string, value: string, expectedRevision?: number): Promise<KeyValue> {
    return this.writeOne({ op: 'update', key, value, expectedRevision });
  }

  delete(key: string, expectedRevision?: number): Promise<KeyValue> {
    return this.writeOne({ op: 'delete', key, expectedRevision });
  }

  private async writeOne(op: TxnOp): Promise<KeyValue> {
    const { results } = await this.txn([op]);
    return results[0]!;
  }
}
