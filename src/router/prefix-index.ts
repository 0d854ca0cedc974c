// The router's memory of which prefix blocks each backend holds: per backend a bounded LRU
// set of block keys (the chained hashes of prompt.ts, or a trace's hash ids).
//
// Two ways to learn it, both kept bounded by the same LRU:
//   - from routing history (`record` after each decision): approximate, what SGLang's radix
//     tree and llm-d's approximate scorer do; blocks are touched tail-first, so a prompt's
//     first block ends up most recent and is evicted last, as an engine that frees a
//     sequence's blocks tail-first (leaf-first eviction) would;
//   - from the engines' KV events (`stored` / `removed` / `cleared`): precise, what Dynamo's
//     KvIndexer and llm-d's precise scorer do.
//
// Why Sets: a JS Set keeps insertion order, so "delete then add" moves a key to the most
// recent end and the first key is the least recent: an LRU with O(1) touch. Evicting with
// `set.values().next()` would rescan the holes deletions leave at the front of V8's table
// (quadratic at 20,000 blocks: ~10 µs per touch measured); instead each set keeps one live
// iterator parked at its oldest entry. The language guarantees a Set iterator visits, in
// insertion order, every entry not deleted (entries re-added after a touch come again at the
// end), so it always yields the least recent key, and each hole is skipped once.
//
// Memory: the number of keys per backend is capped by `capacityBlocks` and, optionally, the
// estimated bytes per backend by `maxBytesPerBackend`; `memoryBytes()` is an estimate (V8
// does not expose per-object sizes) from the key lengths, so the cap is on the estimate.
import type { PrefixIndexView } from './types.ts';

/**
 * Estimated heap bytes of one key held in a Set: ~40 bytes of hash-table slot with its load
 * factor and doubling slack (measured ~110 bytes per entry with a 16-character key on
 * Node 20), plus the string: a 16-byte header and the characters, rounded up to 8 bytes.
 */
export function entryBytes(key: string): number {
  return ENTRY_OVERHEAD_BYTES + 16 + Math.ceil(key.length / 8) * 8;
}
export const ENTRY_OVERHEAD_BYTES = 72;
/** Fixed cost of one backend's entry (its Set, iterator and bookkeeping). */
export const BACKEND_OVERHEAD_BYTES = 256;

/**
 * A bounded LRU set of block keys. Shared by the router's index (one per backend) and the
 * routing simulator (each simulated replica's own KV cache).
 */
export class BlockLru {
  readonly capacityBlocks: number;
  readonly maxBytes: number;
  private readonly set = new Set<string>();
  private oldest: IterableIterator<string>;
  private heldBytes = 0;

  /**
   * @param capacityBlocks keys held at most (≥ 1)
   * @param maxBytes estimated bytes held at most (entryBytes per key)
   * @param onEvict told of every key evicted to respect the bounds (not of `delete`)
   */
  constructor(capacityBlocks: number, maxBytes = Infinity, private readonly onEvict?: (key: string) => void) {
    if (!Number.isInteger(capacityBlocks) || capacityBlocks < 1) throw new RangeError(`capacityBlocks must be a positive integer, got ${capacityBlocks}`);
    if (!(maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${maxBytes}`);
    this.capacityBlocks = capacityBlocks;
    this.maxBytes = maxBytes;
    this.oldest = this.set.values();
  }

  get size(): number {
    return this.set.size;
  }

  /** Estimated bytes of the keys held. */
  get bytes(): number {
    return this.heldBytes;
  }

  has(key: string): boolean {
    return this.set.has(key);
  }

  /** Makes `key` the most recent (inserting it if absent), then evicts down to the bounds. */
  touch(key: string): void {
    if (!this.set.delete(key)) this.heldBytes += entryBytes(key);
    this.set.add(key);
    this.evict();
  }

  /** Drops `key`; true if it was held. */
  delete(key: string): boolean {
    if (!this.set.delete(key)) return false;
    this.heldBytes -= entryBytes(key);
    return true;
  }

  clear(): void {
    this.set.clear();
    this.heldBytes = 0;
    this.oldest = this.set.values();
  }

  /** Keys of `blocks`, from the first, held here (the contiguous prefix). O(matched + 1). */
  matchPrefix(blocks: readonly string[]): number {
    let n = 0;
    while (n < blocks.length && this.set.has(blocks[n]!)) n++;
    return n;
  }

  /**
   * Touches `blocks` last to first, so the first block is the most recent. Only the first
   * `capacityBlocks` are touched: the rest would be evicted by this very call anyway.
   */
  touchTailFirst(blocks: readonly string[]): void {
    for (let i = Math.min(blocks.length, this.capacityBlocks) - 1; i >= 0; i--) this.touch(blocks[i]!);
  }

  /** Keys from least to most recent (for tests and debugging; O(size)). */
  keys(): string[] {
    return [...this.set];
  }

  private evict(): void {
    while (this.set.size > 0 && (this.set.size > this.capacityBlocks || this.heldBytes > this.maxBytes)) {
      let next = this.oldest.next();
      // Done only once the iterator ran past the end (the set was emptied): start afresh.
      if (next.done) {
        this.oldest = this.set.values();
        next = this.oldest.next();
        if (next.done) return;
      }
      const key = next.value;
      this.set.delete(key);
      this.heldBytes -= entryBytes(key);
      this.onEvict?.(key);
    }
  }
}

export interface PrefixIndexOptions {
  /** Block keys remembered per backend (LRU); ContentRouter `spec.index.capacityBlocks`. */
  capacityBlocks: number;
  /** Estimated bytes per backend at most (optional second cap, see entryBytes). */
  maxBytesPerBackend?: number;
}

/** Per-backend bounded LRU sets of prefix-block keys: what the policies match against. */
export class PrefixIndex implements PrefixIndexView {
  readonly capacityBlocks: number;
  readonly maxBytesPerBackend: number;
  private readonly byBackend = new Map<string, BlockLru>();

  constructor(options: PrefixIndexOptions) {
    this.capacityBlocks = options.capacityBlocks;
    this.maxBytesPerBackend = options.maxBytesPerBackend ?? Infinity;
    // Validate once here rather than on the first record.
    new BlockLru(this.capacityBlocks, this.maxBytesPerBackend);
  }

  /** Blocks of `blocks`, from the first, that `backend` is believed to hold. */
  match(backend: string, blocks: readonly string[]): number {
    return this.byBackend.get(backend)?.matchPrefix(blocks) ?? 0;
  }

  /** After routing `blocks` to `backend`: it will hold them (tail-first touch, see header). */
  record(backend: string, blocks: readonly string[]): void {
    this.lru(backend).touchTailFirst(blocks);
  }

  /** KV event: `backend` stored `keys` (in prompt order; the first becomes the most recent). */
  stored(backend: string, keys: readonly string[]): void {
    this.lru(backend).touchTailFirst(keys);
  }

  /** KV event: `backend` evicted `keys`. */
  removed(backend: string, keys: readonly string[]): void {
    const lru = this.byBackend.get(backend);
    if (lru) for (const k of keys) lru.delete(k);
  }

  /** KV event: `backend` dropped its whole cache (restart, reset). */
  cleared(backend: string): void {
    this.byBackend.get(backend)?.clear();
  }

  /** The backend left: forget it. */
  removeBackend(backend: string): void {
    this.byBackend.delete(backend);
  }

  backends(): string[] {
    return [...this.byBackend.keys()];
  }

  /** Block keys held for `backend` (0 for an unknown one); never above capacityBlocks. */
  sizeBlocks(backend: string): number {
    return this.byBackend.get(backend)?.size ?? 0;
  }

  /** Estimated heap bytes of the whole index: keys held plus a fixed cost per backend. */
  memoryBytes(): number {
    let total = 0;
    for (const lru of this.byBackend.values()) total += BACKEND_OVERHEAD_BYTES + lru.bytes;
    return total;
  }

  /** Bytes memoryBytes() can reach with `backends` backends: the configured bound. */
  maxMemoryBytes(backends: number, maxKeyLength = 16): number {
    const perBackend = Math.min(this.maxBytesPerBackend, this.capacityBlocks * entryBytes('x'.repeat(maxKeyLength)));
    return backends * (BACKEND_OVERHEAD_BYTES + perBackend);
  }

  private lru(backend: string): BlockLru {
    let lru = this.byBackend.get(backend);
    if (!lru) this.byBackend.set(backend, (lru = new BlockLru(this.capacityBlocks, this.maxBytesPerBackend)));
    return lru;
  }
}
