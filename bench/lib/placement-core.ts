// The placement-quality procedure of the FGD paper (Weng et al., USENIX ATC'23; its simulator's
// scripts/generate_config_and_run.py, pkg/simulator and experiments/analysis), reproduced on
// our own scheduler framework:
//   1. per seed, the pod list (sorted by name) is shuffled, then resampled to `ratio` (1.3) of
//      the cluster's GPU capacity: while short, pods drawn uniformly with replacement from the
//      original list are appended until the next would pass the target; while over, random pods
//      are dropped;
//   2. pods arrive one at a time and are placed through createFramework(cache, profile) —
//      arrivals only, a pod that fits nowhere fails for good;
//   3. after each arrival the GPU allocation (allocated GPU thousandths / capacity, %, rounded to
//      2 decimals) is recorded against the arrived share (requested thousandths so far /
//      capacity, %, rounded to an integer); the value at an arrived % is the mean of its records
//      (or of the neighbouring ±1 when it has none).
import { ClusterCache, type NodeInput } from '../../src/scheduler/cache/cluster.ts';
import { createFramework, profileConfig } from '../../src/scheduler/framework/profiles.ts';
import { openbPodGpuMilli, openbPodToGang, openbPodToMember, type OpenbPod } from '../../src/sim/openb.ts';
import { countSpecs, specOfMember, typicalPods, type TargetPod } from '../../src/scheduler/plugins/fgd/frag.ts';
import { rng } from '../../src/scheduler/plugins/random/tiebreak.ts';

export const MAX_ARRIVED = 130;

export const capacityMilli = (nodes: readonly NodeInput[]): number => nodes.reduce((s, n) => s + n.devices.length, 0) * 1000;

/** The FGD target workload of a trace: its popular pod specs covering ≥ 95% of its pods. */
export function traceWorkload(pods: readonly OpenbPod[]): TargetPod[] {
  return typicalPods(countSpecs(pods.map((p) => specOfMember(openbPodToMember(p)))));
}

/** Step 1: the pods in arrival order for one seed. */
export function prepareArrivals(pods: readonly OpenbPod[], capacity: number, seed: number, ratio = 1.3): OpenbPod[] {
  const byName = [...pods].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const draw = rng(seed);
  const out = [...byName];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(draw() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  const target = ratio * capacity;
  let total = out.reduce((s, p) => s + openbPodGpuMilli(p), 0);
  if (total < target) {
    for (;;) {
      const p = byName[Math.floor(draw() * byName.length)]!;
      const milli = openbPodGpuMilli(p);
      if (total + milli > target) break;
      total += milli;
      out.push(p);
    }
  } else {
    while (total > target && out.length) {
      const [p] = out.splice(Math.floor(draw() * out.length), 1);
      total -= openbPodGpuMilli(p!);
    }
  }
  return out;
}

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

export interface RunResult {
  policy: string;
  seed: number;
  pods: number;
  failed: number;
  /** GPU allocation % at arrived 0..130 % (null where there is no record nearby). */
  curve: (number | null)[];
  /** Wall time of the placements, ms. */
  ms: number;
}

export interface RunOptions {
  nodes: readonly NodeInput[];
  arrivals: readonly OpenbPod[];
  profile: string;
  seed: number;
  /** The FGD target workload of the trace (for the fgd profile). */
  workload?: TargetPod[];
  /** Called every `every` pods with the number placed so far. */
  onProgress?: (done: number) => void;
  every?: number;
}

/** Steps 2 and 3 for one profile. */
export function runPlacement(o: RunOptions): RunResult {
  const cache = new ClusterCache();
  for (const n of o.nodes) cache.upsertNode(n);
  const capacity = capacityMilli(o.nodes);
  const config = profileConfig(o.profile);
  const fw = createFramework(cache, { ...config, args: { ...config.args, seed: o.seed, ...(o.workload && o.profile === 'fgd' ? { workload: o.workload } : {}) } });
  const sums = new Float64Array(MAX_ARRIVED + 2);
  const counts = new Int32Array(MAX_ARRIVED + 2);
  let arrived = 0;
  let used = 0;
  let failed = 0;
  const every = o.every ?? 500;
  const t0 = performance.now();
  for (let i = 0; i < o.arrivals.length; i++) {
    const pod = o.arrivals[i]!;
    arrived += openbPodGpuMilli(pod);
    const r = fw.schedule(openbPodToGang(pod, i));
    if (r.placement) {
      for (const m of r.placement.members) for (const d of m.devices) used += d.milli;
    } else {
      failed++;
    }
    const bucket = Math.min(MAX_ARRIVED + 1, roundHalfEven((arrived / capacity) * 100));
    sums[bucket]! += Math.round((used / capacity) * 10000) / 100;
    counts[bucket]!++;
    if (o.onProgress && (i + 1) % every === 0) o.onProgress(i + 1);
  }
  const ms = performance.now() - t0;
  o.onProgress?.(o.arrivals.length);
  const curve: (number | null)[] = [];
  for (let x = 0; x <= MAX_ARRIVED; x++) {
    if (counts[x]) {
      curve.push(sums[x]! / counts[x]!);
      continue;
    }
    let s = 0;
    let c = 0;
    for (let y = Math.max(0, x - 1); y <= x + 1; y++) {
      s += sums[y]!;
      c += counts[y]!;
    }
    curve.push(c ? s / c : null);
  }
  return { policy: o.profile, seed: o.seed, pods: o.arrivals.length, failed, curve, ms };
}
