// The log engine: a Store over any synchronous LogBackend (memory, SQLite).
//
// It owns what the backends share: argument checks, revision numbering, checking writes
// (create-if-absent, compare-and-swap) and committing them in groups, publishing commits
// to watchers, list-at-revision bounds, and automatic compaction of old history.
//
// Semantics worth knowing:
// - Each change of a transaction gets its own revision, like kine: a transaction of n ops
//   uses n consecutive revisions and reports the last. (etcd gives a whole Txn one.)
// - A list at revision R is a consistent snapshot of R, served from the change log, for
//   any R from the compacted revision to the current one; older is GONE, newer INVALID.
//   Revision 0 or absent means the newest state.
// - Writes resolve after their group is durably committed; watchers get the changes only
//   after that commit, in revision order, each once.

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
import { isStoreError } from '../store.ts';
import type { LogBackend } from './backend.ts';
import type { PlannedChange } from './change.ts';
import { asStoreError, gone, invalid, storeClosed } from './errors.ts';
import { GroupCommitter, type Outcome } from './group-commit.ts';
import { planTxn } from './plan.ts';
import { SingleOpWrites } from './single-op-writes.ts';
import {
  checkCompactRevision,
  checkKey,
  checkListOptions,
  checkPrefix,
  checkTxnOps,
  checkWatchOptions,
} from './validate.ts';
import { WatchHub, type WatchHubOptions } from './watch-hub.ts';

export interface LogStoreOptions extends WatchHubOptions {
  /**
   * Revisions of history kept for watches and lists at a past revision; older history is
   * compacted automatically. 0 turns automatic compaction off. Default 100000.
   */
  historyRevisions?: number;
  /** Most writes committed together in one group. Default 1000. */
  maxBatch?: number;
}

export const DEFAULT_HISTORY_REVISIONS = 100_000;

export class LogStore extends SingleOpWrites implements Store {
  readonly name: string;
  private revision: number;
  private closed = false;
  private compactionPending = false;
  private readonly historyRevisions: number;
  private readonly hub: WatchHub;
  private readonly committer: GroupCommitter<TxnOp[], TxnResult>;

  constructor(
    private readonly backend: LogBackend,
    opts: LogStoreOptions = {},
  ) {
    super();
    this.name = backend.name;
    this.revision = backend.currentRevision();
    this.historyRevisions = opts.historyRevisions ?? DEFAULT_HISTORY_REVISIONS;
    if (!Number.isSafeInteger(this.historyRevisions) || this.historyRevisions < 0) {
      throw invalid('historyRevisions must be a non-negative integer');
    }
    this.hub = new WatchHub(backend, opts);
    this.committer = new GroupCommitter((writes) => this.commitGroup(writes), opts.maxBatch);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.checkOpen();
    checkKey(key);
    return this.backend.get(key);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    this.checkOpen();
    checkPrefix(prefix);
    checkListOptions(opts);
    const limit = opts.limit ?? 0;
    // One extra key tells whether more remain.
    const range = { prefix, startAfter: opts.startAfter, limit: limit > 0 ? limit + 1 : 0 };
    const revision = opts.revision || this.revision;
    let items: KeyValue[];
    if (revision === this.revision) {
      items = this.backend.range(range);
    } else {
      this.checkReadableRevision(revision);
      items = this.backend.rangeAt(range, revision);
    }
    const more = limit > 0 && items.length > limit;
    if (more) items.length = limit;
    return { items, revision, more };
  }

  async count(prefix: string): Promise<number> {
    this.checkOpen();
    checkPrefix(prefix);
    return this.backend.count(prefix);
  }

  async txn(ops: TxnOp[]): Promise<TxnResult> {
    this.checkOpen();
    checkTxnOps(ops);
    return this.committer.submit(ops.map((op) => ({ ...op })));
  }

  async watch(prefix: string, handlers: WatchHandlers, opts: WatchOptions = {}): Promise<Watch> {
    this.checkOpen();
    checkPrefix(prefix);
    checkWatchOptions(opts);
    return this.hub.watch(prefix, handlers, opts.afterRevision ?? this.revision, this.revision);
  }

  async currentRevision(): Promise<number> {
    this.checkOpen();
    return this.revision;
  }

  async compactedRevision(): Promise<number> {
    this.checkOpen();
    return this.backend.compactedRevision();
  }

  async compact(revision: number): Promise<void> {
    this.checkOpen();
    checkCompactRevision(revision);
    if (revision > this.revision) throw invalid(`cannot compact revision ${revision}: the newest is ${this.revision}`);
    this.compactTo(revision);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Writes already accepted are committed before the backend goes away.
    this.committer.flushAll();
    this.closed = true;
    this.hub.failAll(storeClosed(this.name));
    this.backend.close();
  }

  /**
   * Checks each transaction of the group in order against the committed state plus the
   * changes of the transactions before it, then commits all accepted changes at once.
   * Runs synchronously: nothing else touches the backend meanwhile.
   */
  private commitGroup(group: TxnOp[][]): Outcome<TxnResult>[] {
    if (this.closed) throw storeClosed(this.name);
    const pending = new Map<string, KeyValue | undefined>();
    const lookup = (key: string) => (pending.has(key) ? pending.get(key) : this.backend.get(key));
    const changes: PlannedChange[] = [];
    let revision = this.revision;

    const outcomes = group.map((ops): Outcome<TxnResult> => {
      try {
        const planned = planTxn(ops, lookup, revision + 1);
        for (const change of planned.changes) {
          pending.set(change.kv.key, change.type === 'put' ? change.kv : undefined);
          changes.push(change);
        }
        revision = planned.result.revision;
        return { ok: true, value: planned.result };
      } catch (error) {
        if (!isStoreError(error)) throw error;
        return { ok: false, error };
      }
    });

    if (changes.length > 0) {
      try {
        this.backend.commit(changes, revision, this.revision);
      } catch (error) {
        throw asStoreError(error, `${this.name} commit failed`);
      }
      this.revision = revision;
      this.hub.publish(changes);
      this.scheduleAutoCompaction();
    }
    return outcomes;
  }

  /** Compacts in the background once history exceeds the window by a tenth (at least one revision). */
  private scheduleAutoCompaction(): void {
    if (this.historyRevisions === 0 || this.compactionPending) return;
    const slack = Math.max(1, Math.ceil(this.historyRevisions / 10));
    if (this.revision - this.backend.compactedRevision() < this.historyRevisions + slack) return;
    this.compactionPending = true;
    setImmediate(() => {
      this.compactionPending = false;
      if (this.closed) return;
      try {
        this.compactTo(this.revision - this.historyRevisions);
      } catch {
        // Keeping extra history is harmless; the next commit schedules another attempt.
      }
    });
  }

  private compactTo(revision: number): void {
    if (revision <= this.backend.compactedRevision()) return;
    this.backend.compact(revision);
  }

  private checkReadableRevision(revision: number): void {
    if (revision > this.revision) throw invalid(`revision ${revision} is newer than the current ${this.revision}`);
    const compacted = this.backend.compactedRevision();
    if (revision < compacted) throw gone(`revision ${revision} is compacted (history starts at ${compacted})`);
  }

  private checkOpen(): void {
    if (this.closed) throw storeClosed(this.name);
  }
}
