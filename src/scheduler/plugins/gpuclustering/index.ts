// Score: GpuClustering as the FGD simulator runs it (plugin/gpu_clustering_score.go): pods are
// tagged by what they ask for ("share-gpu", "1-gpu", "2-gpu", …) and a node by the tags of the
// GPU pods it runs. Bands, best first: (75,100] the node runs only pods of this pod's tag;
// (50,75] it runs this tag among others; (25,50] it runs no GPU pod; (0,25] only other tags.
// Within a band, + ⌊25 · (8000 − GPU thousandths left on the node) / 8000⌋: fuller nodes first.
// Pods without GPUs score 0 everywhere. A sharing pod gets the best-fit GPU; equal scores are
// broken uniformly at random, as kube-scheduler does.
//
// The node's tags are kept by Reserve/Unreserve and checked against the cache's holdings when
// read, so gangs released without an Unreserve (deleted, finished) drop out.
import type { CycleContext, MemberPlacement, ReservePlugin, ScorePlugin } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { NodeMemo, Selection, seedOf } from '../random/tiebreak.ts';
import { GPU_PREFERENCE, MAX_SPEC_GPU, bestFitGpu, gpuLeftTotal, podGpu, type PodGpu } from '../bestfit/view.ts';

export const Name = 'GpuClustering';

/** The simulator's affinity tag of a pod; undefined for CPU-only pods. */
export function affinityTag(g: PodGpu): string | undefined {
  if (g.count === 0) return undefined;
  if (g.count === 1 && g.milli < 1000) return 'share-gpu';
  return `${g.count}-gpu`;
}

/** The score for a pod tagged `tag` on a node running pods tagged `nodeTags`, `gpuLeft` thousandths left. */
export function clusteringScore(tag: string | undefined, nodeTags: ReadonlyMap<string, number>, gpuLeft: number): number {
  if (tag === undefined) return 0;
  const fill = Math.trunc((25 * (MAX_SPEC_GPU - gpuLeft)) / MAX_SPEC_GPU);
  if ((nodeTags.get(tag) ?? 0) > 0) return fill + (nodeTags.size === 1 ? 75 : 50);
  return fill + (nodeTags.size === 0 ? 25 : 0);
}

interface Held {
  gang: string;
  placement: MemberPlacement;
  tag: string;
}

export function create(args: PluginArgs = {}): ScorePlugin & ReservePlugin {
  const sel = new Selection(seedOf(args, 0), args.tieBreak !== 'random');
  const memo = new NodeMemo();
  const byNode = new Map<string, Held[]>();
  let tag: string | undefined;

  const tagsOf = (ctx: CycleContext, nodeName: string): Map<string, number> => {
    const tags = new Map<string, number>();
    const held = byNode.get(nodeName);
    if (!held) return tags;
    const live = held.filter((h) => ctx.cache.holding(h.gang).includes(h.placement));
    if (live.length !== held.length) {
      if (live.length) byNode.set(nodeName, live);
      else byNode.delete(nodeName);
    }
    for (const h of live) tags.set(h.tag, (tags.get(h.tag) ?? 0) + 1);
    return tags;
  };

  return {
    name: Name,
    score(ctx, member, node, choice) {
      if (sel.enter(ctx, member)) tag = affinityTag(podGpu(member));
      let s = memo.get(sel.epoch, node.slot);
      if (s === undefined) {
        s = clusteringScore(tag, tag === undefined ? new Map() : tagsOf(ctx, node.name), gpuLeftTotal(node)) + sel.jitter(node.slot);
        memo.set(sel.epoch, node.slot, s);
      }
      return s + GPU_PREFERENCE * bestFitGpu(node, choice);
    },
    reserve(ctx, placement) {
      const t = affinityTag(podGpu(placement.member));
      if (t === undefined) return;
      const held = byNode.get(placement.node) ?? [];
      held.push({ gang: ctx.gang.id, placement, tag: t });
      byNode.set(placement.node, held);
    },
    unreserve(_ctx, placement) {
      const held = byNode.get(placement.node);
      if (!held) return;
      const left = held.filter((h) => h.placement !== placement);
      if (left.length) byNode.set(placement.node, left);
      else byNode.delete(placement.node);
    },
  };
}
