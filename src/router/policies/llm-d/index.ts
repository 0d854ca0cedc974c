// llm-d: the llm-d Router / Gateway API Inference Extension default profile (routing.md §2):
// a weighted sum of normalised scorers, highest score wins.
//   prefix-cache          = matched blocks / request blocks                       weight 3
//   queue                 = (maxQ − q) / (maxQ − minQ), 1 when all equal           weight 2
//   kv-cache-utilization  = 1 − usage, 1 when the backend reports none             weight 2
// q = requests in flight as the router counts them (the EPP reads the engines' waiting
// queues; the router's count is what every policy here gets). Ties: fewer in flight, then
// the first listed (the max-score picker).
import type { PolicyModule } from '../registry.ts';

export interface LlmdOptions {
  /** Weight of the prefix-cache scorer. Default 3. */
  prefixWeight?: number;
  /** Weight of the queue scorer. Default 2. */
  queueWeight?: number;
  /** Weight of the kv-cache-utilization scorer. Default 2. */
  kvUtilizationWeight?: number;
}

export const LLMD_DEFAULTS = { prefixWeight: 3, queueWeight: 2, kvUtilizationWeight: 2 } as const;

export const llmd = {
  name: 'llm-d',
  create(options: LlmdOptions = {}) {
    const wPrefix = options.prefixWeight ?? LLMD_DEFAULTS.prefixWeight;
    const wQueue = options.queueWeight ?? LLMD_DEFAULTS.queueWeight;
    const wKv = options.kvUtilizationWeight ?? LLMD_DEFAULTS.kvUtilizationWeight;
    return {
      name: 'llm-d',
      choose(req, backends, index) {
        let maxQ = -Infinity;
        let minQ = Infinity;
        for (const b of backends) {
          maxQ = Math.max(maxQ, b.inFlight);
          minQ = Math.min(minQ, b.inFlight);
        }
        const total = req.blocks.length;
        let best = -1;
        let bestScore = -Infinity;
        let bestMatch = 0;
        for (let i = 0; i < backends.length; i++) {
          const b = backends[i]!;
          const m = index.match(b.id, req.blocks);
          const prefix = total ? m / total : 0;
          const queue = maxQ === minQ ? 1 : (maxQ - b.inFlight) / (maxQ - minQ);
          const kv = b.kvUtilization === undefined ? 1 : 1 - b.kvUtilization;
          const score = wPrefix * prefix + wQueue * queue + wKv * kv;
          if (score > bestScore || (score === bestScore && b.inFlight < backends[best]!.inFlight)) {
            best = i;
            bestScore = score;
            bestMatch = m;
          }
        }
        return { backend: backends[best]!.id, matchedBlocks: bestMatch, reason: `score ${bestScore.toFixed(2)} (prefix ${bestMatch}/${total})` };
      },
    };
  },
} as const satisfies PolicyModule<LlmdOptions>;
