// The in-memory store: the log engine over MemoryBackend. Nothing survives close().

import type { Store } from '../store.ts';
import { LogStore, type LogStoreOptions } from '../core/log-store.ts';
import { MemoryBackend } from './memory-backend.ts';

export type MemoryStoreOptions = LogStoreOptions;

export function createMemoryStore(opts: MemoryStoreOptions = {}): Store {
  return new LogStore(new MemoryBackend(), opts);
}
