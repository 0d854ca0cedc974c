// The one table of routing policies. Each policy is a small module in its own folder,
// `{ name, create(options) → RoutingPolicy }`; the live router, the simulator, the benchmark
// and ContentRouter's `spec.routing.policy` all name policies from here.
import type { RoutingPolicy } from '../types.ts';
import { roundRobin, type RoundRobinOptions } from './round-robin/index.ts';
import { leastLoaded, type LeastLoadedOptions } from './least-loaded/index.ts';
import { sglang, type SglangOptions } from './sglang/index.ts';
import { llmd, type LlmdOptions } from './llm-d/index.ts';
import { k8s4ai, type K8s4aiOptions } from './k8s4ai/index.ts';

/** A policy module: a name and a factory of fresh (possibly stateful) policy instances. */
export interface PolicyModule<O extends object = object> {
  readonly name: string;
  create(options?: O): RoutingPolicy;
}

export const POLICIES = {
  'round-robin': roundRobin,
  'least-loaded': leastLoaded,
  sglang,
  'llm-d': llmd,
  k8s4ai,
} as const;

export type PolicyName = keyof typeof POLICIES;
export const POLICY_NAMES = Object.keys(POLICIES) as PolicyName[];

/** Every policy's options in one bag (the names do not clash); each takes what it knows. */
export type PolicyOptions = RoundRobinOptions & LeastLoadedOptions & SglangOptions & LlmdOptions & K8s4aiOptions;

export function isPolicyName(name: string): name is PolicyName {
  return Object.hasOwn(POLICIES, name);
}

/** A fresh instance of policy `name`. */
export function createPolicy(name: PolicyName, options: PolicyOptions = {}): RoutingPolicy {
  const module: PolicyModule<PolicyOptions> | undefined = isPolicyName(name) ? POLICIES[name] : undefined;
  if (!module) throw new RangeError(`unknown routing policy "${name}" (known: ${POLICY_NAMES.join(', ')})`);
  return module.create(options);
}
