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

/** The default profile: what `up`, `sim` and the benchmarks run unless told otherwise. */
export const DEFAULT_PROFILE: ProfileConfig = {
  name: 'k8s4ai',
  ...COMMON,
  preFilter: [...COMMON.preFilter],
  filter: [...COMMON.filter],
  permit: [...COMMON.permit],
  score: [
    { name: 'TopologyPack', weight: 2 },
    { name: 'BinPack', weight: 1 },
    { name: 'ShareFit', weight: 2 },
    { name: 'WarmWeights', weight: 3 },
  ],
};

const profiles = new Map<string, ProfileConfig>([[DEFAULT_PROFILE.name, DEFAULT_PROFILE]]);

/** Adds a named profile (baselines register themselves here). */
export function registerProfile(config: ProfileConfig): void {
  profiles.set(config.name, config);
}

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

function instantiate<T>(name: string, point: string, config: ProfileConfig, has: (p: AnyPlugin) => boolean): T {
  const factory = PLUGINS.get(name);
  if (!factory) throw new ProfileError(`profile ${config.name}: no plugin named "${name}" (at ${point})`);
  const plugin = factory(config.args ?? {});
  if (!has(plugin)) throw new ProfileError(`profile ${config.name}: plugin "${name}" does not implement ${point}`);
  return plugin as T;
}

export function buildProfile(config: ProfileConfig): Profile {
  return {
    name: config.name,
    queueSort: instantiate(config.queueSort, 'queueSort', config, (p) => typeof p.less === 'function'),
    preFilter: config.preFilter.map((n) => instantiate(n, 'preFilter', config, (p) => typeof p.preFilter === 'function')),
    filter: config.filter.map((n) => instantiate(n, 'filter', config, (p) => typeof p.filter === 'function')),
    allocate: instantiate(config.allocate, 'allocate', config, (p) => typeof p.choices === 'function'),
    score: config.score.map((s) => ({ plugin: instantiate(s.name, 'score', config, (p) => typeof p.score === 'function'), weight: s.weight })),
    reserve: (config.reserve ?? []).map((n) => instantiate(n, 'reserve', config, (p) => typeof p.reserve === 'function')),
    permit: config.permit.map((n) => instantiate(n, 'permit', config, (p) => typeof p.permit === 'function')),
    feasibleNodesToScore: config.feasibleNodesToScore ?? 16,
    domainsToTry: config.domainsToTry ?? 8,
  };
}

/** A framework over `cache` running the named (or given) profile. */
export function createFramework(cache: ClusterCache, profile: string | ProfileConfig = DEFAULT_PROFILE.name): Framework {
  const config = typeof profile === 'string' ? profileConfig(profile) : profile;
  return new FrameworkClass(cache, buildProfile(config));
}
