// k8s4ai: prefix affinity that yields to load only at explicit bounds.
//
// Rule, for a request of P prompt tokens in B blocks, over the ready backends b:
//
//   1. Credited match. m_b = blocks the index says b holds (contiguous from the first).
//      It counts only if m_b ≥ minMatchBlocks AND m_b ≥ minMatchRatio × B; else c_b = 0.
//      cached_b = min(c_b × blockTokens, P), uncached_b = P − cached_b.
//      Why: on the Mooncake conversation trace every request starts with the same block, so a
//      literal longest-prefix rule sends everything to whichever replica saw it first
//      (routing.md §8: 100% of requests on one replica); a one-block or tiny relative match is
//      no reason to prefer a backend, so below the minimum the request is routed by load.
//
//   2. Load bound (bounded-load consistent hashing, Mirrokni, Thorup & Zadimoghaddam 2018,
//      with work instead of request counts). W_b = uncached prompt tokens this policy sent
//      to b, decayed by ½ every `halfLifeDecisions` decisions (a window over recent
//      traffic that needs no clock, so the live router and the simulator agree). Only
//      backends with W_b ≤ loadBound × mean(W) + max(w̄, boundFloorTokens) are candidates, w̄
//      the recent mean work of one request (the ceiling of bounded-load hashing: a router with
//      little traffic, or short prompts, must not push a conversation's next turn away). The least-W backend always
//      is, so the set is never empty: a backend's recent prefill work can exceed the mean by
//      at most loadBound× plus about two requests before affinity yields. That is what keeps a hot prefix (a long
//      shared system prompt, one huge conversation) from piling onto one replica.
//
//   3. Cost. Among the candidates pick the lowest
//          cost_b = outstanding_b + uncached_b + (missWeight − 1) × (uncached_b − min uncached)
//      outstanding_b = prompt tokens sent to b not yet prefilled (the router's count), so
//      outstanding_b + uncached_b, × the prefill time per token, is the request's own time to
//      first token on b (the engine prefills FIFO). The last term charges a deviation from
//      the best-cached backend for the tokens it recomputes: that work delays everything
//      queued behind it, and the conversation's affinity moves. With missWeight = 64 a cached
//      prefix worth 1 s of prefill yields only to a queue 64 s longer: affinity holds in normal
//      operation (queues are short) and breaks when a backend is stuck or badly overloaded.
//      A new conversation (no credited match anywhere) goes to the shortest prefill queue —
//      the main reason for the lower TTFT than in-flight-count policies, whose counts are
//      dominated by requests decoding, not by prefill waiting.
//      Ties: less recent work W, then fewer in flight, then the first listed.
//
// Parameters (ContentRouter spec.routing gives loadBound and minMatchRatio):
//   loadBound          1.25  recent-work bound, a multiple of the mean (≥ 1)
//   minMatchRatio      0.1   credited match needs this fraction of the request's blocks
//   minMatchBlocks     2     … and at least this many blocks
//   missWeight         64    uncached tokens cost this many queued tokens when deviating (≥ 1)
//   halfLifeDecisions  256   window of the work bound, in routing decisions
//   boundFloorTokens   8192  the least slack of the work bound, in tokens
//
// Why the bound is on recent work and not on outstanding prefill ("outstanding ≤ loadBound ×
// mean + one request"): queues are spiky (one 80k-token prompt in prefill puts its backend
// far above a mean that is mostly near zero), so that bound fires on ordinary traffic and
// gave up 1.5–2 points of block hit rate on the Mooncake trace (33.7–34.8% vs 36.1%, 4 × 20k
// blocks) for no p99 gain; the queue still counts, in the cost.
import type { PolicyModule } from '../registry.ts';
import { cachedTokens } from '../../load.ts';

export interface K8s4aiOptions {
  /** A backend's recent prefill work may reach this multiple of the mean (+ one request). Default 1.25. */
  loadBound?: number;
  /** Matches below this fraction of the request's blocks are ignored. Default 0.1. */
  minMatchRatio?: number;
  /** Matches below this many blocks are ignored. Default 2. */
  minMatchBlocks?: number;
  /** Weight of recomputed tokens against queued ones when leaving the best-cached backend. Default 64. */
  missWeight?: number;
  /** Half-life of the recent-work window, in routing decisions. Default 256. */
  halfLifeDecisions?: number;
  /**
   * The work bound never comes closer to the mean than this many tokens: spreading a few
   * short requests buys no balance and costs their conversations' affinity. Default 8192.
   */
  boundFloorTokens?: number;
}

export const K8S4AI_DEFAULTS = { loadBound: 1.25, minMatchRatio: 0.1, minMatchBlocks: 2, missWeight: 64, halfLifeDecisions: 256, boundFloorTokens: 8192 } as const;

export const k8s4ai = {
  name: 'k8s4ai',
  create(options: K8s4aiOptions = {}) {
    const loadBound = options.loadBound ?? K8S4AI_DEFAULTS.loadBound;
    const minMatchRatio = options.minMatchRatio ?? K8S4AI_DEFAULTS.minMatchRatio;
    const minMatchBlocks = options.minMatchBlocks ?? K8S4AI_DEFAULTS.minMatchBlocks;
    const missWeight = options.missWeight ?? K8S4AI_DEFAULTS.missWeight;
    const halfLife = options.halfLifeDecisions ?? K8S4AI_DEFAULTS.halfLifeDecisions;
    const boundFloor = options.boundFloorTokens ?? K8S4AI_DEFAULTS.boundFloorTokens;
    if (!(loadBound >= 1)) throw new RangeError(`loadBound must be ≥ 1, got ${loadBound}`);
    if (!(minMatchRatio >= 0 && minMatchRatio <= 1)) throw new RangeError(`minMatchRatio must be in [0, 1], got ${minMatchRatio}`);
    if (!(minMatchBlocks >= 0)) throw new RangeError(`minMatchBlocks must be ≥ 0, got ${minMatchBlocks}`);
    if (!(missWeight >= 1)) throw new RangeError(`missWeight must be ≥ 1, got ${missWeight}`);
    if (!(halfLife > 0)) throw new RangeError(`halfLifeDecisions must be positive, got ${halfLife}`);
    if (!(boundFloor >= 0)) throw new RangeError(`boundFloorTokens must be ≥ 0, got ${boundFloor}`);
    const decay = 0.5 ** (1 / halfLife);
    /** Recent work W per backend id (decayed uncached tokens sent). */
    const work = new Map<string, number>();
    /** Decayed count and work of recent decisions: the typical request's work. */
    let decisions = 0;
    let decisionWork = 0;
    // Reused per decision: no allocation on the hot path beyond these growing arrays.
    let uncachedOf: number[] = [];
    let matchOf: number[] = [];

    return {
      name: 'k8s4ai',
      choose(req, backends, index) {
        const n = backends.length;
        if (uncachedOf.length < n) {
          uncachedOf = new Array<number>(n).fill(0);
          matchOf = new Array<number>(n).fill(0);
        }
        // A backend seen for the first time starts at the mean of the others: at 0 it would
        // take every new conversation until it caught up with their whole history.
        let known = 0;
        let knownSum = 0;
        for (const b of backends) {
          const w = work.get(b.id);
          if (w !== undefined) {
            known++;
            knownSum += w;
          }
        }
        let wSum = 0;
        let wMin = Infinity;
        for (const b of backends) {
          if (!work.has(b.id)) work.set(b.id, known ? knownSum / known : 0);
          const w = work.get(b.id)!;
          wSum += w;
          if (w < wMin) wMin = w;
        }
        // Plus one typical request (bounded-load hashing's ceiling): with little traffic (a router
        // just started) one request must not put its conversation's backend out of bounds.
        const typical = decisions > 0 ? decisionWork / decisions : req.promptTokens;
        const wLimit = loadBound * (wSum / n) + Math.max(typical, boundFloor);

        let minUncached = Infinity;
        for (let i = 0; i < n; i++) {
          const m = index.match(backends[i]!.id, req.blocks);
          const credited = m >= minMatchBlocks && m >= minMatchRatio * req.blocks.length ? m : 0;
          matchOf[i] = m;
          uncachedOf[i] = req.promptTokens - cachedTokens(req, credited);
          if (uncachedOf[i]! < minUncached) minUncached = uncachedOf[i]!;
        }

        let best = -1;
        let bestCost = Infinity;
        let bestWork = Infinity;
        for (let i = 0; i < n; i++) {
          const b = backends[i]!;
          const w = work.get(b.id)!;
          // The least-worked backend always qualifies (also when rounding puts the mean below it).
          if (w > wLimit && w > wMin) continue;
          const u = uncachedOf[i]!;
          const cost = b.outstandingPrefillTokens + u + (missWeight - 1) * (u - minUncached);
          if (cost < bestCost || (cost === bestCost && (w < bestWork || (w === bestWork && b.inFlight < backends[best]!.inFlight)))) {
            best = i;
            bestCost = cost;
            bestWork = w;
          }
        }
        // Decay every backend's recent work, then charge the chosen one.
        for (const b of backends) work.set(b.id, work.get(b.id)! * decay);
        const chosen = backends[best]!;
        const u = uncachedOf[best]!;
        work.set(chosen.id, work.get(chosen.id)! + u);
        decisions = decisions * decay + 1;
        decisionWork = decisionWork * decay + u;
        // Forget backends gone long ago (the map would otherwise grow with churn).
        if (work.size > 2 * n + 16) {
          const present = new Set(backends.map((b) => b.id));
          for (const id of work.keys()) if (!present.has(id)) work.delete(id);
        }

        const m = matchOf[best]!;
        const total = req.blocks.length;
        const reason = u < req.promptTokens
          ? `prefix ${m}/${total} blocks, ${chosen.outstandingPrefillTokens} tokens queued`
          : minUncached < req.promptTokens
            ? `affinity yields to load (${m}/${total} blocks here)`
            : 'no prefix match, shortest prefill queue';
        return { backend: chosen.id, matchedBlocks: m, reason };
      },
    };
  },
} as const satisfies PolicyModule<K8s4aiOptions>;
