// sglang: SGLang's cache-aware policy (sgl-model-gateway `policies/cache_aware.rs`, see
// /work/shared/reference/routing.md §1), over prefix blocks instead of characters:
//   1. imbalanced ⇔ (max − min in-flight) > balanceAbsThreshold AND max > min × balanceRelThreshold
//      → the least loaded backend;
//   2. else, match ratio = longest match over all backends / request blocks; if it is above
//      cacheThreshold → the backend with the longest match (ties: fewest in flight, first);
//   3. else → the least loaded (current SGLang; the older "smallest tree" fallback caused a
//      death spiral, PRs #14305/#14532).
// Load = requests in flight as the router counts them; "least loaded" breaks ties on
// outstanding prefill (SGLang has no such signal: a small kindness to the baseline).
// Defaults are the CLI/doc defaults: 0.3 / 64 / 1.5.
import type { PolicyModule } from '../registry.ts';
import { leastLoadedIndex } from '../../load.ts';

export interface SglangOptions {
  /** Route by prefix only above this match ratio (0..1). Default 0.3. */
  cacheThreshold?: number;
  /** Imbalance needs max − min in-flight above this. Default 64. */
  balanceAbsThreshold?: number;
  /** … and max above min × this. Default 1.5. */
  balanceRelThreshold?: number;
}

export const SGLANG_DEFAULTS = { cacheThreshold: 0.3, balanceAbsThreshold: 64, balanceRelThreshold: 1.5 } as const;

export const sglang = {
  name: 'sglang',
  create(options: SglangOptions = {}) {
    const cacheThreshold = options.cacheThreshold ?? SGLANG_DEFAULTS.cacheThreshold;
    const absThreshold = options.balanceAbsThreshold ?? SGLANG_DEFAULTS.balanceAbsThreshold;
    const relThreshold = options.balanceRelThreshold ?? SGLANG_DEFAULTS.balanceRelThreshold;
    return {
      name: 'sglang',
      choose(req, backends, index) {
        let max = -Infinity;
        let min = Infinity;
        for (const b of backends) {
          max = Math.max(max, b.inFlight);
          min = Math.min(min, b.inFlight);
        }
        if (max - min > absThreshold && max > min * relThreshold) {
          const b = backends[leastLoadedIndex(backends)]!;
          return { backend: b.id, matchedBlocks: index.match(b.id, req.blocks), reason: `imbalanced (${min}..${max} in flight) → least loaded` };
        }
        let best = -1;
        let bestMatch = 0;
        for (let i = 0; i < backends.length; i++) {
          const m = index.match(backends[i]!.id, req.blocks);
          if (best < 0 || m > bestMatch || (m === bestMatch && backends[i]!.inFlight < backends[best]!.inFlight)) {
            best = i;
            bestMatch = m;
          }
        }
        const ratio = req.blocks.length ? bestMatch / req.blocks.length : 0;
        if (ratio > cacheThreshold) {
          return { backend: backends[best]!.id, matchedBlocks: bestMatch, reason: `prefix ${bestMatch}/${req.blocks.length} blocks` };
        }
        const b = backends[leastLoadedIndex(backends)]!;
        return { backend: b.id, matchedBlocks: index.match(b.id, req.blocks), reason: `low match (${bestMatch}/${req.blocks.length}) → least loaded` };
      },
    };
  },
} as const satisfies PolicyModule<SglangOptions>;
