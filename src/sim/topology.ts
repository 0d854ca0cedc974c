// Topology quality of a gang's placement: the lowest domain level that could have held the
// whole gang at the moment it was placed, the level it was placed at, and its span.
//
// "Could have held" is judged on free whole GPUs (of the gang's accelerator class when all
// members name the same one) in ready, schedulable nodes: the members, largest first, are
// packed best-fit into the free counts of the domain's nodes. Levels, lowest first:
// node (one machine), leaf, spine, fabric. Only gangs of several members that all ask for
// whole GPUs are judged; for shares and MIG slices "could have held" is not well defined.
import type { TopologyLevel } from '../api/schema.ts';
import type { ClusterCache, DomainState, NodeState } from '../scheduler/cache/cluster.ts';
import { deviceIsWholeFree } from '../scheduler/cache/cluster.ts';
import type { GangPlacement, GangRequest } from '../scheduler/framework/types.ts';

export const SPAN_LEVELS: TopologyLevel[] = ['node', 'leaf', 'spine', 'fabric'];

/** Levels above node: node 0, leaf 1, spine 2, fabric 3. */
export const levelsAboveNode = (level: TopologyLevel): number => Math.max(0, SPAN_LEVELS.indexOf(level));

/** Whether the gang is judged for topology: several members, each asking for whole GPUs only. */
export function judgedForTopology(gang: GangRequest): boolean {
  return gang.members.length > 1 && gang.members.every((m) => m.gpus > 0 && !m.migProfile);
}

function commonClass(gang: GangRequest): string | undefined {
  const first = gang.members[0]?.acceleratorClass;
  return first && gang.members.every((m) => m.acceleratorClass === first) ? first : undefined;
}

function freeOn(node: NodeState, cls: string | undefined): number {
  if (!node.ready || node.unschedulable) return 0;
  if (!cls) return node.freeWhole;
  let n = 0;
  for (const d of node.devices) if (d.className === cls && deviceIsWholeFree(d)) n++;
  return n;
}

/** Best-fit-decreasing of member sizes into a histogram of free counts (histogram is copied). */
function packs(sizes: readonly number[], histogram: readonly number[]): boolean {
  const h = [...histogram];
  for (const s of sizes) {
    let f = s;
    while (f < h.length && !h[f]) f++;
    if (f >= h.length) return false;
    h[f]!--;
    h[f - s] = (h[f - s] ?? 0) + 1;
  }
  return true;
}

const freeOf = (d: DomainState, cls: string | undefined) => (cls ? (d.freeWholeByClass.get(cls) ?? 0) : d.freeWhole);

/**
 * The lowest level at which one domain could hold the whole gang now (before it is placed),
 * or undefined when none could.
 */
export function lowestFeasibleLevel(cache: ClusterCache, gang: GangRequest): TopologyLevel | undefined {
  const sizes = gang.members.map((m) => m.gpus).sort((a, b) => b - a);
  const need = sizes.reduce((a, b) => a + b, 0);
  const smallest = sizes[sizes.length - 1] ?? 0;
  const cls = commonClass(gang);
  // One histogram of free counts per leaf that has enough free GPUs at all.
  const leafHist = new Map<string, number[]>();
  let node = false;
  for (const leaf of cache.domainsAt('leaf')) {
    if (freeOf(leaf, cls) < smallest) continue;
    const h: number[] = [];
    for (const n of cache.nodesByFreeWhole(leaf.name, smallest)) {
      const f = freeOn(n, cls);
      if (f >= need) node = true;
      h[f] = (h[f] ?? 0) + 1;
    }
    for (let i = 0; i < h.length; i++) h[i] ??= 0;
    leafHist.set(leaf.name, h);
  }
  if (node) return 'node';
  const domainFits = (d: DomainState): boolean => {
    if (freeOf(d, cls) < need) return false;
    const h: number[] = [];
    for (const leaf of d.leaves) {
      const lh = leafHist.get(leaf);
      if (!lh) continue;
      for (let i = 0; i < lh.length; i++) h[i] = (h[i] ?? 0) + lh[i]!;
    }
    for (let i = 0; i < h.length; i++) h[i] ??= 0;
    return packs(sizes, h);
  };
  for (const level of ['leaf', 'spine'] as TopologyLevel[]) {
    if (cache.domainsAt(level).some(domainFits)) return level;
  }
  // The top: the fabric(s), or a leaf or spine declared without a parent.
  for (const d of cache.domains.values()) if (!d.parent && domainFits(d)) return 'fabric';
  return undefined;
}

export interface Span {
  /** The level of the lowest domain holding every member. */
  level: TopologyLevel;
  nodes: number;
  leaves: number;
}

export function spanOf(cache: ClusterCache, placement: GangPlacement): Span {
  const nodes = new Set(placement.members.map((m) => m.node));
  const leaves = new Set([...nodes].map((n) => cache.nodes.get(n)?.leaf ?? n));
  const level: TopologyLevel = SPAN_LEVELS.includes(placement.level) ? placement.level : 'node';
  return { level, nodes: nodes.size, leaves: leaves.size };
}
