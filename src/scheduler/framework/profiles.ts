// Profiles choose plugins and weights, from code or from configuration (YAML/JSON), the
// way kube-scheduler's KubeSchedulerConfiguration does.
import type { Framework, Profile } from './framework.ts';
import { Framework as FrameworkClass } from './framework.ts';
import { PLUGINS, type PluginArgs } from './registry.ts';
import type { AnyPlugin } from './types.ts';
import type { ClusterCache } from '../cache/cluster.ts';

export interface ProfileConfig {
  name: string;
  queueSort: string;
  preFilter: string[];
  filter: string[];
  allocate: string;
  score: { name: string; weight: number }[];
  reserve?: string[];
  permit: string[];
  feasibleNodesToScore?: number;
  domainsToTry?: number;
  /** false: a topology-blind baseline (see Profile.topologyAware). Default true. */
  topologyAware?: boolean;
  /** Arguments passed to every plugin factory (e.g. seed). */
  args?: PluginArgs;
}

const COMMON = {
  queueSort: 'PrioritySort',
  preFilter: ['ClusterCapacity'],
  filter: ['NodeReady', 'NodeSelector', 'AcceleratorMatch', 'NodeResourcesFit'],
  allocate: 'DeviceAllocator',
  permit: ['GangPermit'],
} as const;

/**
 * The default profile: what `up`, `sim` and the benchmarks run unless told otherwise.
 * Fragmentation (plugins/fragmentation) places by what a placement costs the pods still to
 * come — GPUs they can no longer use, and GPUs stranded without CPU or memory — learning the
 * workload from the gangs it sees (its PreFilter); it also does the packing BinPack and
 * ShareFit did. TopologyPack keeps gangs close (it outweighs Fragmentation across nodes), warm
 * weights and a restarting member's local checkpoint win outright.
 */
export const DEFAULT_PROFILE: ProfileConfig = {
  name: 'k8s4ai',
  ...COMMON,
  preFilter: [...COMMON.preFilter, 'Fragmentation'],
  filter: [...COMMON.filter],
  permit: [...COMMON.permit],
  score: [
    { name: 'Fragmentation', weight: 1 },
    { name: 'TopologyPack', weight: 2 },
    { name: 'WarmWeights', weight: 3 },
    { name: 'CheckpointLocality', weight: 3 },
  ],
};

const profiles = new Map<string, ProfileConfig>([[DEFAULT_PROFILE.name, DEFAULT_PROFILE]]);

/** Adds a named profile (baselines register themselves here). */
export function registerProfile(config: ProfileConfig): void {
  profiles.set(config.name, config);
}

/**
 * The FGD paper's baselines (USENIX ATC'23), one profile each, as its simulator runs them: the
 * common filters, the baseline's score alone, every feasible node scored (kube-scheduler's
 * percentageOfNodesToScore: 100). `bench placement` compares them with the default profile.
 */
export const BASELINE_PROFILES: readonly ProfileConfig[] = (
  [
    ['random', 'Random'],
    ['dotprod', 'DotProduct'],
    ['gpuclustering', 'GpuClustering'],
    ['gpupacking', 'GpuPacking'],
    ['bestfit', 'BestFit'],
    ['fgd', 'FGD'],
  ] as const
).map(([name, plugin]) => ({
  name,
  ...COMMON,
  // FGD learns its target workload at PreFilter unless args.workload gives it.
  preFilter: plugin === 'FGD' ? [...COMMON.preFilter, plugin] : [...COMMON.preFilter],
  filter: [...COMMON.filter],
  permit: [...COMMON.permit],
  score: [{ name: plugin, weight: 1 }],
  // GpuClustering tags nodes by the pods it reserves on them.
  reserve: plugin === 'GpuClustering' ? [plugin] : [],
  feasibleNodesToScore: Number.MAX_SAFE_INTEGER,
}));
for (const p of BASELINE_PROFILES) registerProfile(p);

/**
 * The topology-blind baseline of `bench topology`: what kube-scheduler does with its default
 * LeastAllocated scoring. The same filters and device allocator, but no lowest-domain search:
 * members spread over the emptiest nodes anywhere in the required domain (or cluster).
 */
export const SPREAD_PROFILE: ProfileConfig = {
  name: 'spread',
  ...COMMON,
  preFilter: [...COMMON.preFilter],
  filter: [...COMMON.filter],
  permit: [...COMMON.permit],
  score: [{ name: 'LeastAllocated', weight: 1 }],
  topologyAware: false,
};
registerProfile(SPREAD_PROFILE);

export function profileNames(): string[] {
  return [...profiles.keys()];
}

export function profileConfig(name: string): ProfileConfig {
  const config = profiles.get(name);
  if (!config) throw new Error(`unknown scheduling profile "${name}" (known: ${profileNames().join(', ')})`);
  return config;
}

export class ProfileError extends Error {
  readonly code = 'K8S4AI_SCHEDULER_PROFILE';
}

/**
 * A plugin of the profile. `built` holds the instances of one build: a plugin named at several
 * extension points (PreFilter and Score, Reserve and Score) is one instance with one state.
 */
function instantiate<T>(name: string, point: string, config: ProfileConfig, has: (p: AnyPlugin) => boolean, built: Map<string, AnyPlugin>): T {
  const factory = PLUGINS.get(name);
  if (!factory) throw new ProfileError(`profile ${config.name}: no plugin named "${name}" (at ${point})`);
  const plugin = built.get(name) ?? factory(config.args ?? {});
  built.set(name, plugin);
  if (!has(plugin)) throw new ProfileError(`profile ${config.name}: plugin "${name}" does not implement ${point}`);
  return plugin as T;
}

export function buildProfile(config: ProfileConfig): Profile {
  const built = new Map<string, AnyPlugin>();
  const plugin = <T>(name: string, point: string, has: (p: AnyPlugin) => boolean): T => instantiate<T>(name, point, config, has, built);
  return {
    name: config.name,
    queueSort: plugin(config.queueSort, 'queueSort', (p) => typeof p.less === 'function'),
    preFilter: config.preFilter.map((n) => plugin(n, 'preFilter', (p) => typeof p.preFilter === 'function')),
    filter: config.filter.map((n) => plugin(n, 'filter', (p) => typeof p.filter === 'function')),
    allocate: plugin(config.allocate, 'allocate', (p) => typeof p.choices === 'function'),
    score: config.score.map((s) => ({ plugin: plugin(s.name, 'score', (p) => typeof p.score === 'function'), weight: s.weight })),
    reserve: (config.reserve ?? []).map((n) => plugin(n, 'reserve', (p) => typeof p.reserve === 'function')),
    permit: config.permit.map((n) => plugin(n, 'permit', (p) => typeof p.permit === 'function')),
    feasibleNodesToScore: config.feasibleNodesToScore ?? 16,
    domainsToTry: config.domainsToTry ?? 8,
    ...(config.topologyAware === false ? { topologyAware: false } : {}),
  };
}

/** A framework over `cache` running the named (or given) profile. */
export function createFramework(cache: ClusterCache, profile: string | ProfileConfig = DEFAULT_PROFILE.name): Framework {
  const config = typeof profile === 'string' ? profileConfig(profile) : profile;
  return new FrameworkClass(cache, buildProfile(config));
}
