// The routing core's vocabulary: what a request looks like to a policy, what the router
// knows of each backend, and what a policy answers. The live router (`k8s4ai router`) and
// the routing benchmark (simulated time) run the very same policies over these.

/** A request as routing sees it. */
export interface RouteRequest {
  /** Chained prefix-block keys (prompt.ts hashes, or a trace's hash_ids as strings). */
  blocks: readonly string[];
  /** Prompt tokens. */
  promptTokens: number;
  /** Tokens per block (the last block may be partial). */
  blockTokens: number;
}

/** What the router knows of one backend at the moment of a decision. */
export interface BackendLoad {
  id: string;
  /** Requests sent and not finished. */
  inFlight: number;
  /** Prompt tokens sent that the backend has not yet prefilled (uncached part only). */
  outstandingPrefillTokens: number;
  /** Fraction of the backend's KV cache in use, when it reports one (0..1). */
  kvUtilization?: number;
}

/** A policy's answer. */
export interface RouteDecision {
  backend: string;
  /** Blocks of the request the index says the backend holds (contiguous from the start). */
  matchedBlocks: number;
  /** Why, in a few words, for logs and debugging ("prefix 12/40 blocks", "least loaded"). */
  reason: string;
}

/** The per-backend memory of which prefix blocks each backend holds. */
export interface PrefixIndexView {
  /** Blocks of `blocks`, from the first, that `backend` holds. */
  match(backend: string, blocks: readonly string[]): number;
}

/** A routing policy: one folder each under src/router/policies, named in one registry. */
export interface RoutingPolicy {
  readonly name: string;
  /** Picks a backend among `backends` (never empty, all ready and under their bound). */
  choose(req: RouteRequest, backends: readonly BackendLoad[], index: PrefixIndexView): RouteDecision;
}
