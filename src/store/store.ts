// The one storage interface every backend (memory, SQLite, etcd) implements.
//
// A store is a versioned key-value map in the style of etcd v3: every change gets a
// revision from one global, strictly increasing counter; a key remembers the revision
// that created it and the one that last modified it. The API server keeps Kubernetes
// objects in it as JSON strings; `modRevision` is what clients see as resourceVersion.

/** One stored key as it is now. */
export interface KeyValue {
  key: string;
  /** The stored bytes, as a UTF-8 string (JSON for API objects). */
  value: string;
  /** Revision of the change that created this key (its latest incarnation). */
  createRevision: number;
  /** Revision of the change that last wrote this key. */
  modRevision: number;
}

export interface ListOptions {
  /** Return at most this many keys (0 or absent: all). */
  limit?: number;
  /** Return only keys strictly greater than this one (for paging). */
  startAfter?: string;
  /**
   * Read the state as of this revision (paging through a list keeps the revision of its
   * first page). Absent: the newest state. A revision older than the retained history
   * throws a StoreError with code GONE.
   */
  revision?: number;
}

export interface ListResult {
  items: KeyValue[];
  /** The revision the list reflects: watch from here to see every later change. */
  revision: number;
  /** True when keys beyond the last returned one remain under the prefix. */
  more: boolean;
}

/** One operation of a multi-key transaction. */
export type TxnOp =
  /** Create the key; fails if it exists. */
  | { op: 'create'; key: string; value: string }
  /** Replace the key's value; fails if it is absent or (when given) its modRevision differs. */
  | { op: 'update'; key: string; value: string; expectedRevision?: number }
  /** Delete the key; fails if it is absent or (when given) its modRevision differs. */
  | { op: 'delete'; key: string; expectedRevision?: number };

export interface TxnResult {
  /** The revision the transaction committed at (highest revision it wrote). */
  revision: number;
  /** One entry per op, in order: the key's new state; for a delete, its last state. */
  results: KeyValue[];
}

export type WatchEventType = 'put' | 'delete';

export interface WatchEvent {
  type: WatchEventType;
  /**
   * For `put`: the new state. For `delete`: the key's last value, with `modRevision`
   * set to the revision of the deletion (what Kubernetes reports as the deleted
   * object's resourceVersion).
   */
  kv: KeyValue;
  /** True when this put created the key (createRevision === modRevision). */
  created: boolean;
}

export interface WatchOptions {
  /**
   * Deliver every change with a revision strictly greater than this one. Absent: only
   * changes from now on. Older than the retained history: the watch fails with GONE.
   */
  afterRevision?: number;
}

export interface Watch {
  /** Stops delivery; no event is delivered after this resolves. */
  close(): void;
}

export interface WatchHandlers {
  /** Called with changes in revision order, each exactly once. */
  onEvent(event: WatchEvent): void;
  /**
   * Called at most once when the watch ends on its own: GONE when the start revision has
   * been compacted or the watcher fell too far behind, UNAVAILABLE when the backend
   * went away. No event follows.
   */
  onError(err: StoreError): void;
}

export interface Store {
  /** A short name for logs and benchmarks: memory, sqlite, etcd. */
  readonly name: string;
  get(key: string): Promise<KeyValue | undefined>;
  /** Keys under `prefix`, in key order. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  /** Number of keys under `prefix` now. */
  count(prefix: string): Promise<number>;
  /** Create-if-absent; ALREADY_EXISTS otherwise. */
  create(key: string, value: string): Promise<KeyValue>;
  /** Compare-and-swap on modRevision when `expectedRevision` is given; CONFLICT on mismatch, NOT_FOUND when absent. */
  update(key: string, value: string, expectedRevision?: number): Promise<KeyValue>;
  /** Returns the deleted key's last state (modRevision = deletion revision). */
  delete(key: string, expectedRevision?: number): Promise<KeyValue>;
  /** All ops or none: on the first failing op the whole transaction is refused with that op's error. */
  txn(ops: TxnOp[]): Promise<TxnResult>;
  /** Watch every key under `prefix`. Events start arriving after this resolves. */
  watch(prefix: string, handlers: WatchHandlers, opts?: WatchOptions): Promise<Watch>;
  /** The newest revision. */
  currentRevision(): Promise<number>;
  /** The oldest revision a watch or list may still start from (exclusive bound: afterRevision >= this). */
  compactedRevision(): Promise<number>;
  /** Forget history up to and including `revision`; later watches/lists from before it get GONE. */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

/** Stable error codes shared by every backend; the API server maps them to HTTP codes. */
export const StoreErrorCode = {
  NOT_FOUND: 'K8S4AI_STORE_NOT_FOUND',
  ALREADY_EXISTS: 'K8S4AI_STORE_ALREADY_EXISTS',
  CONFLICT: 'K8S4AI_STORE_CONFLICT',
  GONE: 'K8S4AI_STORE_GONE',
  UNAVAILABLE: 'K8S4AI_STORE_UNAVAILABLE',
  INVALID: 'K8S4AI_STORE_INVALID',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly key: string | undefined;
  constructor(code: StoreErrorCode, message: string, key?: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
    this.key = key;
  }
}

export const isStoreError = (err: unknown, code?: StoreErrorCode): err is StoreError =>
  err instanceof StoreError && (code === undefined || err.code === code);

/** The smallest key greater than every key that starts with `prefix` (for range ends). */
export function prefixEnd(prefix: string): string {
  return prefix + '\uffff';
}
