// The routing core: what the live router (`k8s4ai router`), the routing simulator and the
// routing benchmark share. Policies are named in policies/registry.ts.
export type { BackendLoad, PrefixIndexView, RouteDecision, RouteRequest, RoutingPolicy } from './types.ts';
export { blockHashes, canonicalPrompt, chainSeed, CHARS_PER_TOKEN, promptBlocks, stableJson, type PromptBlocks } from './prompt.ts';
export { BlockLru, entryBytes, PrefixIndex, type PrefixIndexOptions } from './prefix-index.ts';
export { cachedTokens, leastLoadedIndex, LoadTracker, type LoadTicket } from './load.ts';
export { createPolicy, isPolicyName, POLICIES, POLICY_NAMES, type PolicyModule, type PolicyName, type PolicyOptions } from './policies/registry.ts';
export { K8S4AI_DEFAULTS, type K8s4aiOptions } from './policies/k8s4ai/index.ts';
export { SGLANG_DEFAULTS, type SglangOptions } from './policies/sglang/index.ts';
export { LLMD_DEFAULTS, type LlmdOptions } from './policies/llm-d/index.ts';
export { INDEX_SOURCES, IndexSource } from '../api/kinds/contentrouter.ts';
export {
  MOONCAKE_BLOCK_TOKENS,
  parseMooncakeTrace,
  scaleArrivals,
  simulate,
  upperBound,
  type ReplicaStats,
  type SimRequest,
  type SimRequestResult,
  type SimResult,
  type SimulateOptions,
} from './simulate.ts';
