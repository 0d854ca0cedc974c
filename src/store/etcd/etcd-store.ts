// Store on etcd v3 through the etcd3 client: etcd does revisions, transactions, history
// and watches itself; this maps the Store contract onto its primitives. All keys live
// under one prefix, so several stores (or clusters) can share an etcd.

import type { Etcd3 } from 'etcd3';
import type {
  KeyValue,
  ListOptions,
  ListResult,
  Store,
  TxnOp,
  TxnResult,
  Watch,
  WatchHandlers,
  WatchOptions,
} from '../store.ts';
import { gone, invalid, storeClosed } from '../core/errors.ts';
import { SingleOpWrites } from '../core/single-op-writes.ts';
import {
  checkCompactRevision,
  checkKey,
  checkListOptions,
  checkPrefix,
  checkTxnOps,
  checkWatchOptions,
} from '../core/validate.ts';
import { CompactionTracker } from './compaction.ts';
import { etcdCall, fromEtcdError, isCompactedError, isFutureRevisionError } from './errors.ts';
import { Keyspace, toRevision } from './keyspace.ts';
import { buildTxn, txnRefusal, txnResult } from './txn.ts';
import { openWatch, type EtcdWatch } from './watch.ts';

export class EtcdStore extends SingleOpWrites implements Store {
  readonly name = 'etcd';
  private readonly keyspace: Keyspace;
  private readonly compaction: CompactionTracker;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    prefix: string,
  ) {
    super();
    this.keyspace = new Keyspace(prefix);
    // The bare prefix is never a store key (keys are non-empty), so probes can use it.
    this.compaction = new CompactionTracker(client, this.keyspace.encode(''));
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.checkOpen();
    checkKey(key);
    const res = await etcdCall('etcd get', () => this.client.kv.range({ key: this.keyspace.encode(key) }));
    const kv = res.kvs[0];
    return kv && this.keyspace.toKeyValue(kv);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.checkOpen();
    checkPrefix(prefix);
    checkListOptions(opts);
    const res = await etcdCall('etcd list', () =>
      this.client.kv.range({
        ...this.keyspace.page(prefix, opts.startAfter),
        limit: opts.limit ?? 0,
        revision: opts.revision ?? 0,
      }),
    );
    return {
      items: res.kvs.map((kv) => this.keyspace.toKeyValue(kv)),
      // header.revision is the newest revision even when reading an older one.
      revision: opts.revision || toRevision(res.header.revision),
      more: res.more,
    };
  }

  async count(prefix: string): Promise<number> {
    this.checkOpen();
    checkPrefix(prefix);
    const res = await etcdCall('etcd count', () =>
      this.client.kv.range({ ...this.keyspace.under(prefix), count_only: true }),
    );
    return toRevision(res.count);
  }

  async txn(ops: TxnOp[]): Promise<TxnResult> {
    this.checkOpen();
    checkTxnOps(ops);
    const res = await etcdCall('etcd txn', () => this.client.kv.txn(buildTxn(ops, this.keyspace)));
    if (!res.succeeded) throw txnRefusal(ops, res, this.keyspace);
    return txnResult(ops, res, this.keyspace);
  }

  async watch(prefix: string, handlers: WatchHandlers, opts: WatchOptions = {}): Promise<Watch> {
    this.checkOpen();
    checkPrefix(prefix);
    checkWatchOptions(opts);
    const { afterRevision } = opts;
    // etcd would accept the watch and cancel it a moment later; refuse it up front instead.
    if (afterRevision !== undefined && (await etcdCall('etcd watch', () => this.compaction.isCompacted(afterRevision)))) {
      throw gone(`revision ${afterRevision} is compacted`);
    }
    const request = {
      ...this.keyspace.under(prefix),
      ...(afterRevision !== undefined && { start_revision: afterRevision + 1 }),
    };
    const watch = await etcdCall('etcd watch', () =>
      openWatch(this.client, request, this.keyspace, handlers, (w) => this.watches.delete(w)),
    );
    this.watches.add(watch);
    return watch;
  }

  async currentRevision(): Promise<number> {
    this.checkOpen();
    const res = await etcdCall('etcd revision', () =>
      this.client.kv.range({ key: this.keyspace.encode(''), count_only: true }),
    );
    return toRevision(res.header.revision);
  }

  async compactedRevision(): Promise<number> {
    this.checkOpen();
    return this.compaction.current();
  }

  async compact(revision: number): Promise<void> {
    this.checkOpen();
    checkCompactRevision(revision);
    if (revision <= this.compaction.lowerBound) return;
    try {
      await this.client.kv.compact({ revision, physical: true });
    } catch (err) {
      if (isFutureRevisionError(err)) throw invalid(`cannot compact revision ${revision}: it is newer than the current one`);
      // Already compacted past it (by someone else): nothing to do.
      if (!isCompactedError(err)) throw fromEtcdError(err, 'etcd compact');
      return;
    }
    this.compaction.note(revision);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of [...this.watches]) watch.fail(storeClosed(this.name));
    this.client.close();
  }

  private checkOpen(): void {
    if (this.closed) throw storeClosed(this.name);
  }
}
