// One committed change to one key: the unit of the change log and of watch events.

import type { KeyValue, WatchEvent, WatchEventType } from '../store.ts';

export interface Change {
  type: WatchEventType;
  /**
   * For `put`, the key's new state. For `delete`, its last value with `modRevision` set to
   * the deletion's revision. Either way `kv.modRevision` is the change's revision.
   */
  kv: KeyValue;
}

/** A change as the engine hands it to a backend for writing. */
export interface PlannedChange extends Change {
  /** The key's state just before this change; absent when this change created it. */
  prev: KeyValue | undefined;
}

/** A watch event for `change`, with its own copy of the key state so consumers can't alter the log. */
export const toWatchEvent = (change: Change): WatchEvent => ({
  type: change.type,
  kv: { ...change.kv },
  created: change.type === 'put' && change.kv.createRevision === change.kv.modRevision,
});
