// Score: Fragmentation Gradient Descent (FGD, Weng et al., USENIX ATC'23), as its simulator
// scores (plugin/fgd_score.go): place the pod where the node's fragmentation F_n (frag.ts)
// grows least, score = ⌊sigmoid((F_n − F_n′)/1000) · 100⌋ with F_n′ after the placement. A
// sharing pod tries every GPU that fits and keeps the best (the first of equal ones, the GPU it
// then gets); whole GPUs are the first free ones.
//
// Equal scores: the simulator renames the nodes by a seeded random permutation and its
// kube-scheduler fork keeps the first best node, so ties go to a random but fixed node order
// per seed (args.seed); `tieBreak: 'random'` draws anew per pod instead (upstream
// kube-scheduler). The target workload comes from args.workload (TargetPod[], the popular specs
// of the trace, as the paper computes them); without it, it is learned from the gangs the
// plugin is asked to place (WorkloadTracker).
import type { CycleContext, PreFilterPlugin, ScorePlugin } from '../../framework/types.ts';
import { ok } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { Selection, seedOf } from '../random/tiebreak.ts';
import { FragCache, FragModel, WorkloadTracker, type TargetPod } from './frag.ts';

export const Name = 'FGD';

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** The simulator's integer FGD score for a fragmentation change F → F′. */
export const fgdScore = (before: number, after: number): number => Math.trunc(sigmoid((before - after) / 1000) * 100);

export interface FgdArgs extends PluginArgs {
  /** The target workload; learned online when absent. */
  workload?: TargetPod[];
  tieBreak?: 'order' | 'random';
}

export function create(args: FgdArgs = {}): ScorePlugin & PreFilterPlugin {
  const fixed = Array.isArray(args.workload) ? new FragModel(args.workload) : undefined;
  const tracker = fixed ? undefined : new WorkloadTracker();
  const sel = new Selection(seedOf(args, 0), args.tieBreak !== 'random');
  const cache = new FragCache();
  let model: FragModel = fixed ?? new FragModel([]);
  return {
    name: Name,
    preFilter(ctx: CycleContext) {
      if (tracker) {
        tracker.bootstrap(ctx.cache);
        tracker.observe(ctx.gang);
      }
      return ok();
    },
    score(ctx, member, node, choice) {
      if (sel.enter(ctx, member)) model = fixed ?? tracker!.model();
      // A pod that asks for nothing scores the maximum everywhere.
      if (member.cpuMilli === 0 && member.gpus === 0 && member.gpuMilli === 0 && member.vramBytes === 0 && !member.migProfile) return 100 + sel.jitter(node.slot);
      const [before, after] = cache.beforeAfter(node, model, model === fixed ? 0 : tracker!.version, member, choice);
      return fgdScore(before, after) + sel.jitter(node.slot);
    },
  };
}
