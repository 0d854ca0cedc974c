// Score: BestFit as the FGD simulator runs it (plugin/best_fit_score.go): the node left with the
// least free CPU and GPU after the pod wins, score = ⌊100 · (1 − ½·(cpuFree − cpu)/128 CPUs
// − ½·(gpuFree − gpu)/8 GPUs)⌋. The simulator then min-max normalises the scores of all nodes
// into 0..100 with integer arithmetic; since raw scores already lie in 0..100 that mapping is
// strictly increasing, so it changes no decision and is left out. A sharing pod gets the
// best-fit GPU; equal scores are broken uniformly at random, as kube-scheduler does.
import type { ScorePlugin } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { NodeMemo, Selection, seedOf } from '../random/tiebreak.ts';
import { GPU_PREFERENCE, MAX_SPEC_CPU, MAX_SPEC_GPU, bestFitGpu, gpuLeftTotal, podGpu, totalMilli } from './view.ts';

export const Name = 'BestFit';

export function bestFitScore(cpuLeft: number, gpuLeft: number, cpuReq: number, gpuReq: number): number {
  const waste = (0.5 * (cpuLeft - cpuReq)) / MAX_SPEC_CPU + (0.5 * (gpuLeft - gpuReq)) / MAX_SPEC_GPU;
  return Math.trunc((1 - waste) * 100);
}

export function create(args: PluginArgs = {}): ScorePlugin {
  const sel = new Selection(seedOf(args, 0), args.tieBreak !== 'random');
  const memo = new NodeMemo();
  return {
    name: Name,
    score(ctx, member, node, choice) {
      sel.enter(ctx, member);
      let s = memo.get(sel.epoch, node.slot);
      if (s === undefined) {
        s = bestFitScore(node.cpuFree, gpuLeftTotal(node), member.cpuMilli, totalMilli(podGpu(member))) + sel.jitter(node.slot);
        memo.set(sel.epoch, node.slot, s);
      }
      return s + GPU_PREFERENCE * bestFitGpu(node, choice);
    },
  };
}
