// The simulated engine's prefix KV cache: which prompt blocks' keys and values it still
// holds, as chained block hashes (src/router/prompt.ts), evicted least recently used first.
//
// Because each hash covers its block and everything before it, a request can reuse only a
// contiguous run of blocks from its start: the first missing block ends the match, whatever
// follows it. This is the behaviour of vLLM's automatic prefix caching, which the router's
// prefix index predicts; the hashes are the same ones the router computes, so the engine can
// publish what it stores and evicts (KvEvent) and the router's index stays exact.

/** A change to the cache, as published on GET /v1/kv/events. */
export interface KvEvent {
  type: 'stored' | 'removed';
  hashes: string[];
}

export type KvEventListener = (event: KvEvent) => void;

export interface KvInsertResult {
  /** Hashes the cache holds now and did not before. */
  stored: string[];
  /** Hashes the cache held before and does not now. */
  removed: string[];
}

export class PrefixKvCache {
  /** Insertion order is recency order: the first key is the least recently used. */
  private readonly blocks = new Map<string, true>();
  private readonly listeners = new Set<KvEventListener>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`cache capacity must be a positive number of blocks, got ${capacity}`);
  }

  /** Blocks held. */
  get size(): number {
    return this.blocks.size;
  }

  /** Fraction of the capacity in use (0..1). */
  get usage(): number {
    return this.blocks.size / this.capacity;
  }

  has(hash: string): boolean {
    return this.blocks.has(hash);
  }

  /**
   * Blocks of `hashes`, from the first, that the cache holds. A pure lookup: recency changes
   * only when the request's blocks are inserted after its prefill, so a request that is
   * cancelled before it computes anything leaves the LRU order as it found it.
   */
  match(hashes: readonly string[]): number {
    let n = 0;
    while (n < hashes.length && this.blocks.has(hashes[n]!)) n++;
    return n;
  }

  /**
   * Records a prefilled request's blocks, evicting the least recently used when full.
   * Blocks are touched from the last to the first, so the first block ends up the most
   * recently used: under pressure a long prompt loses its tail before its head, and the
   * shared heads (system prompts, earlier turns) outlive the unique tails. A request longer
   * than the whole cache thus keeps its first `capacity` blocks.
   *
   * Listeners get the net change: a block evicted and stored again within this one insert
   * is in neither list, so applying `stored` then `removed` (or the reverse) reproduces the
   * cache exactly.
   */
  insert(hashes: readonly string[]): KvInsertResult {
    const stored = new Set<string>();
    const removed = new Set<string>();
    for (let i = hashes.length - 1; i >= 0; i--) {
      const h = hashes[i]!;
      if (this.blocks.delete(h)) {
        this.blocks.set(h, true);
        continue;
      }
      if (this.blocks.size >= this.capacity) {
        const lru = this.blocks.keys().next().value as string;
        this.blocks.delete(lru);
        if (!stored.delete(lru)) removed.add(lru);
      }
      this.blocks.set(h, true);
      if (!removed.delete(h)) stored.add(h);
    }
    const result = { stored: [...stored], removed: [...removed] };
    if (result.stored.length) this.emit({ type: 'stored', hashes: result.stored });
    if (result.removed.length) this.emit({ type: 'removed', hashes: result.removed });
    return result;
  }

  /** Every block held, least recently used first: the snapshot a new event subscriber starts from. */
  snapshot(): string[] {
    return [...this.blocks.keys()];
  }

  /** Drops every block (listeners get one `removed` event). */
  clear(): void {
    const all = this.snapshot();
    this.blocks.clear();
    if (all.length) this.emit({ type: 'removed', hashes: all });
  }

  /** Calls `listener` on every later change; returns the unsubscribe function. */
  subscribe(listener: KvEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: KvEvent): void {
    for (const l of [...this.listeners]) l(event);
  }
}
