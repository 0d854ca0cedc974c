// One (trace, policy, seed) task of `bench placement`, in whatever process runs it (a child,
// see placement-child.ts, or the bench itself). Traces are read once per process.
import { loadOpenbNodes, loadOpenbPods, type OpenbPod } from '../../src/sim/openb.ts';
import type { NodeInput } from '../../src/scheduler/cache/cluster.ts';
import type { TargetPod } from '../../src/scheduler/plugins/fgd/frag.ts';
import { capacityMilli, prepareArrivals, runPlacement, traceWorkload, type RunResult } from './placement-core.ts';

export interface PlacementTask {
  id: number;
  nodesPath: string;
  podsPath: string;
  policy: string;
  seed: number;
  ratio: number;
}

export type WorkerMessage = { type: 'progress'; id: number; done: number; total: number } | { type: 'result'; id: number; result: RunResult } | { type: 'error'; id: number; message: string };

const nodeLists = new Map<string, NodeInput[]>();
const podLists = new Map<string, { pods: OpenbPod[]; workload: TargetPod[] }>();

function nodesOf(path: string): NodeInput[] {
  let n = nodeLists.get(path);
  if (!n) nodeLists.set(path, (n = loadOpenbNodes(path)));
  return n;
}

function podsOf(path: string): { pods: OpenbPod[]; workload: TargetPod[] } {
  let p = podLists.get(path);
  if (!p) {
    const pods = loadOpenbPods(path);
    podLists.set(path, (p = { pods, workload: traceWorkload(pods) }));
  }
  return p;
}

/** Runs one task (also used in-process when there is a single worker). */
export function runTask(task: PlacementTask, onProgress?: (done: number, total: number) => void): RunResult {
  const nodes = nodesOf(task.nodesPath);
  const { pods, workload } = podsOf(task.podsPath);
  const arrivals = prepareArrivals(pods, capacityMilli(nodes), task.seed, task.ratio);
  return runPlacement({
    nodes,
    arrivals,
    profile: task.policy,
    seed: task.seed,
    workload,
    every: 250,
    ...(onProgress ? { onProgress: (done: number) => onProgress(done, arrivals.length) } : {}),
  });
}
