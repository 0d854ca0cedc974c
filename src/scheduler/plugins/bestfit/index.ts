// Score: BestFit as the FGD simulator runs it (plugin/best_fit_score.go): the node left with the
// least free CPU and GPU after the pod wins, score = ⌊100 · (1 − ½·(cpuFree − cpu)/128 CPUs
// − ½·(gpuFree − gpu)/8 GPUs)⌋. The simulator then min-max normalises the scores of all nodes
// into 0..100 with integer arithmetic; since raw scores already lie in 0..100 that mapping is
// strictly increasing, so it changes no decision and is left out. A sharing pod gets the
// best-fit GPU; equal scores are broken uniformly at random, as kube-scheduler does.
import type { ScorePlugin } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { MAX_SPEC_CPU, MAX_SPEC_GPU, nodeScorePlugin } from './view.ts';

export const Name = 'BestFit';

export function bestFitScore(cpuLeft: number, gpuLeft: number, cpuReq: number, gpuReq: number): number {
  const waste = (0.5 * (cpuLeft - cpuReq)) / MAX_SPEC_CPU + (0.5 * (gpuLeft - gpuReq)) / MAX_SPEC_GPU;
  return Math.trunc((1 - waste) * 100);
}

export function create(args: PluginArgs = {}): ScorePlugin {
  return nodeScorePlugin(Name, args, bestFitScore);
}
