// What a storage backend provides to the log engine (log-store.ts). The engine owns
// revisions, checks, group commit and watches; a backend only stores and reads, all
// synchronously, so that reading history and registering a watcher, or checking a batch
// of writes and committing it, happen without anything running in between.

import type { KeyValue } from '../store.ts';
import type { Change, PlannedChange } from './change.ts';

/** Where a key range read starts: at the prefix, or strictly after a key (paging). */
export interface KeyRange {
  prefix: string;
  /** Only keys strictly greater than this one; may sort before the prefix. */
  startAfter?: string | undefined;
  /** At most this many keys; 0 means all. */
  limit: number;
}

export interface LogBackend {
  readonly name: string;
  /** The newest committed revision, as persisted (0 for an empty store). */
  currentRevision(): number;
  /** Changes at or below this revision may be forgotten. */
  compactedRevision(): number;
  get(key: string): KeyValue | undefined;
  /** Keys in the range as they are now, in key order. */
  range(range: KeyRange): KeyValue[];
  /** Keys in the range as they were at `revision` (compactedRevision <= revision <= current). */
  rangeAt(range: KeyRange, revision: number): KeyValue[];
  count(prefix: string): number;
  /** Changes to keys under `prefix` with a revision above `afterRevision`, oldest first, at most `limit`. */
  changesAfter(prefix: string, afterRevision: number, limit: number): Change[];
  /**
   * Writes `changes` (consecutive revisions, ending at `revision`) atomically and durably,
   * or throws and writes nothing. `expectedRevision` is the revision the engine believes is
   * current, so a backend can detect a second writer.
   */
  commit(changes: readonly PlannedChange[], revision: number, expectedRevision: number): void;
  /** Forgets history at or below `revision` (> compactedRevision, <= currentRevision). */
  compact(revision: number): void;
  close(): void;
}
