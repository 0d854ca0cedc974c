// The FGD simulator's view of nodes and pods, shared by the baseline score plugins: a pod asks
// for GpuNumber GPUs of MilliGpu thousandths each (1000 for whole GPUs); a node has CPU left and
// a list of per-GPU thousandths left. Constants are the simulator's normalisers.
import type { NodeState } from '../../cache/cluster.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { NodeMemo, Selection, seedOf } from '../random/tiebreak.ts';
import type { DeviceChoice, MemberRequest, ScorePlugin } from '../../framework/types.ts';
import { deviceLeft } from '../fgd/frag.ts';

/** The simulator's largest node: 128 CPUs, 8 GPUs (pkg/type/open-gpu-share/utils/const.go). */
export const MAX_SPEC_CPU = 128000;
export const MAX_SPEC_GPU = 8000;
/** Weight that keeps a within-node GPU preference below any node-level difference. */
export const GPU_PREFERENCE = 1e-7;

export interface PodGpu {
  /** GpuNumber: GPUs asked for (0: none). */
  count: number;
  /** MilliGpu: thousandths per GPU. */
  milli: number;
}

export function podGpu(m: MemberRequest): PodGpu {
  if (m.gpus > 0) return { count: m.gpus, milli: 1000 };
  if (m.gpuMilli > 0) return { count: 1, milli: m.gpuMilli };
  if (m.vramBytes > 0 || m.migProfile) return { count: 1, milli: 1 };
  return { count: 0, milli: 0 };
}

export const totalMilli = (g: PodGpu): number => g.count * g.milli;

export function gpuLeftTotal(node: NodeState): number {
  let s = 0;
  for (const d of node.devices) s += deviceLeft(d);
  return s;
}

export function fullyFreeGpus(node: NodeState): number {
  let n = 0;
  for (const d of node.devices) if (deviceLeft(d) === 1000) n++;
  return n;
}

/**
 * Open-Gpu-Share's "best" GPU selection as a preference in [0, 1]: a share goes to the GPU with
 * the least left that fits (the first of equal ones, which the framework keeps). Whole-GPU and
 * CPU-only choices have one choice per node: 0.
 */
export function bestFitGpu(node: NodeState, choice: DeviceChoice): number {
  if (choice.devices.length !== 1 || choice.devices[0]!.whole) return 0;
  const d = node.devices.find((x) => x.index === choice.devices[0]!.index);
  return d ? 1 - deviceLeft(d) / 1001 : 0;
}

/**
 * A score plugin of the simulator's node-level kind (BestFit, DotProd): `nodeScore` of the
 * node's free CPU and GPU against the pod's request, computed once per node per selection,
 * with the tie-breaking jitter, plus the best-fit GPU preference within the node.
 */
export function nodeScorePlugin(
  name: string,
  args: PluginArgs,
  nodeScore: (cpuLeft: number, gpuLeft: number, cpuReq: number, gpuReq: number) => number,
): ScorePlugin {
  const sel = new Selection(seedOf(args, 0), args.tieBreak !== 'random');
  const memo = new NodeMemo();
  return {
    name,
    score(ctx, member, node, choice) {
      sel.enter(ctx, member);
      let s = memo.get(sel.epoch, node.slot);
      if (s === undefined) {
        s = nodeScore(node.cpuFree, gpuLeftTotal(node), member.cpuMilli, totalMilli(podGpu(member))) + sel.jitter(node.slot);
        memo.set(sel.epoch, node.slot, s);
      }
      return s + GPU_PREFERENCE * bestFitGpu(node, choice);
    },
  };
}
