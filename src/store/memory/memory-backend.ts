// LogBackend kept entirely in memory: for tests and throwaway clusters.
//
// The current state is a map plus a sorted key index; history is an array of changes in
// revision order, each remembering the key's previous state, so a list at a past revision
// is the current state with the newer changes undone.

import type { KeyValue } from '../store.ts';
import type { KeyRange, LogBackend } from '../core/backend.ts';
import type { Change, PlannedChange } from '../core/change.ts';
import { compareKeys, hasPrefix } from '../core/keys.ts';
import { SortedKeys } from './sorted-keys.ts';

export class MemoryBackend implements LogBackend {
  readonly name = 'memory';
  private readonly current = new Map<string, KeyValue>();
  private readonly keys = new SortedKeys();
  /** Changes above `compacted`, oldest first. */
  private history: PlannedChange[] = [];
  private revision = 0;
  private compacted = 0;

  currentRevision(): number {
    return this.revision;
  }

  compactedRevision(): number {
    return this.compacted;
  }

  get(key: string): KeyValue | undefined {
    const kv = this.current.get(key);
    return kv && { ...kv };
  }

  range(range: KeyRange): KeyValue[] {
    return this.keys.range(range).map((key) => ({ ...this.current.get(key)! }));
  }

  rangeAt({ prefix, startAfter, limit }: KeyRange, revision: number): KeyValue[] {
    const state = new Map<string, KeyValue>();
    for (const key of this.keys.range({ prefix, limit: 0 })) state.set(key, this.current.get(key)!);
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.kv.modRevision > revision; i--) {
      const { kv, prev } = this.history[i]!;
      if (!hasPrefix(kv.key, prefix)) continue;
      if (prev) state.set(kv.key, prev);
      else state.delete(kv.key);
    }
    const keys = [...state.keys()]
      .filter((key) => startAfter === undefined || compareKeys(key, startAfter) > 0)
      .sort(compareKeys);
    return (limit > 0 ? keys.slice(0, limit) : keys).map((key) => ({ ...state.get(key)! }));
  }

  count(prefix: string): number {
    return this.keys.count(prefix);
  }

  changesAfter(prefix: string, afterRevision: number, limit: number): Change[] {
    const out: Change[] = [];
    for (let i = this.firstAbove(afterRevision); i < this.history.length && out.length < limit; i++) {
      const { type, kv } = this.history[i]!;
      if (hasPrefix(kv.key, prefix)) out.push({ type, kv });
    }
    return out;
  }

  commit(changes: readonly PlannedChange[], revision: number): void {
    for (const change of changes) {
      const { key } = change.kv;
      if (change.type === 'put') {
        this.current.set(key, change.kv);
        this.keys.add(key);
      } else {
        this.current.delete(key);
        this.keys.remove(key);
      }
      this.history.push(change);
    }
    this.revision = revision;
  }

  compact(revision: number): void {
    this.history = this.history.slice(this.firstAbove(revision));
    this.compacted = revision;
  }

  close(): void {
    this.current.clear();
    this.history = [];
  }

  /** Index of the first history entry with a revision above `revision`. */
  private firstAbove(revision: number): number {
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.history[mid]!.kv.modRevision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
