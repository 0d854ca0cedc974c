// Score: DotProd, the Tetris packing heuristic as the FGD simulator runs it
// (plugin/dot_product_score.go with dimExtMethod "merge", normMethod "max"): node and pod are
// vectors [CPU, GPU thousandths] divided by the largest node's (128 CPUs, 8 GPUs); the score is
// ⌊100 · (1 − node·pod / 2)⌋ with the node's free capacity, so the node whose free resources
// align least with the pod wins (it fills up). A sharing pod gets the best-fit GPU ("best" GPU
// selection); equal scores are broken uniformly at random, as kube-scheduler does.
import type { ScorePlugin } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { MAX_SPEC_CPU, MAX_SPEC_GPU, nodeScorePlugin } from '../bestfit/view.ts';

export const Name = 'DotProduct';

export function dotProductScore(cpuLeft: number, gpuLeft: number, cpuReq: number, gpuReq: number): number {
  const dot = (cpuLeft / MAX_SPEC_CPU) * (cpuReq / MAX_SPEC_CPU) + (gpuLeft / MAX_SPEC_GPU) * (gpuReq / MAX_SPEC_GPU);
  return Math.trunc(100 * (1 - dot / 2));
}

export function create(args: PluginArgs = {}): ScorePlugin {
  return nodeScorePlugin(Name, args, dotProductScore);
}
