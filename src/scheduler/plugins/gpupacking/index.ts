// Score: GpuPacking as the FGD simulator runs it (plugin/gpu_packing_score.go), highest first:
//   1. the pod fits on GPUs already in use: 100 − ⌊left/100⌋ summed over the GPUs it takes
//      (left before the pod), at least 50;
//   2. it needs fully free GPUs of a node already in use: 50 − the number of them, at least 33;
//   3. the node's GPUs are all free: 33 − their number (at least that number).
// Pods without GPUs score 0 everywhere. GPUs are taken best-fit first (the GPU with the least
// left that fits); equal scores are broken uniformly at random, as kube-scheduler does.
import type { NodeState } from '../../cache/cluster.ts';
import type { ScorePlugin } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { NodeMemo, Selection, seedOf } from '../random/tiebreak.ts';
import { deviceLeft } from '../fgd/frag.ts';
import { GPU_PREFERENCE, bestFitGpu, podGpu, type PodGpu } from '../bestfit/view.ts';

export const Name = 'GpuPacking';

/** The simulator's packing score for a node whose GPUs have `lefts` thousandths left. */
export function packingScore(lefts: readonly number[], pod: PodGpu): number {
  const fullyFree = lefts.filter((l) => l === 1000).length;
  if (fullyFree === lefts.length) return Math.max(33 - fullyFree, fullyFree);
  const ascending = lefts.map((l, i) => [l, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let need = pod.count;
  let freeUsed = 0;
  const used: number[] = [];
  for (const [left] of ascending) {
    if (need === 0) break;
    if (pod.milli <= left) {
      need--;
      used.push(left);
      if (left === 1000) freeUsed++;
    }
  }
  if (need !== 0) return 0;
  if (freeUsed > 0) return Math.max(50 - freeUsed, 33);
  let ratio = 0;
  for (const left of used) ratio += Math.trunc((left * 100) / 1000);
  return Math.max(100 - Math.trunc(ratio / 10), 50);
}

function nodeScore(node: NodeState, pod: PodGpu): number {
  if (pod.count === 0) return 0;
  return packingScore(node.devices.map(deviceLeft), pod);
}

export function create(args: PluginArgs = {}): ScorePlugin {
  const sel = new Selection(seedOf(args, 0), args.tieBreak !== 'random');
  const memo = new NodeMemo();
  let pod: PodGpu = { count: 0, milli: 0 };
  return {
    name: Name,
    score(ctx, member, node, choice) {
      if (sel.enter(ctx, member)) pod = podGpu(member);
      let s = memo.get(sel.epoch, node.slot);
      if (s === undefined) {
        s = nodeScore(node, pod) + sel.jitter(node.slot);
        memo.set(sel.epoch, node.slot, s);
      }
      return s + GPU_PREFERENCE * bestFitGpu(node, choice);
    },
  };
}
