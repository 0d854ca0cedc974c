// Score: k8s4ai's fragmentation-aware placement — the default profile's rule, in `up`, `sim`
// and the benchmarks alike.
//
// FGD (Weng et al., USENIX ATC'23) places a pod where the node's GPU fragmentation grows least,
// measured against the popular pod specs. On the openb traces its idle GPUs at saturation turn
// out to be of two kinds: GPU remnants no pod fits, and GPUs stranded because their node ran
// out of CPU or host memory first (FGD only sees CPU, and only pod by pod). This rule prices a
// placement by what it costs the pods still to come, in GPU thousandths:
//
//   loss = Σ_t p_t · size_t · (copies of t the node can host before − after)       (1)
//        + λ · (stranded GPU after − stranded GPU before)                          (2)
//
// (1) For each spec t of the target workload (frequency p_t, size_t = its GPU thousandths), the
//     copies of t the node can still host, bounded by its GPUs (free whole GPUs per whole-GPU
//     spec; Σ⌊left/share⌋ over the GPUs for a sharing spec), its CPU and its host memory: a
//     placement is charged for every future pod it displaces, weighted by that pod's GPU.
// (2) The node's GPU thousandths that the CPU and memory left cannot feed at the workload's
//     mean CPU and memory per GPU thousandth: stranded = total − min(total, cpu/ρ_cpu,
//     mem/ρ_mem). It steers CPU- and memory-hungry pods (and CPU-only pods) to nodes with
//     spare CPU and memory, and frugal pods to CPU-poor GPU nodes, so nodes run out of GPU,
//     CPU and memory together. λ = 8.
//
// Score = 100·σ(−loss / 2 GPUs): monotone, never truncated, so it never ties where the loss
// differs. Equal losses go to the device with the least left (a share fills a used GPU first),
// then the fuller node, then the node in the fuller leaf, then the node that joined first —
// first fit, so nodes fill one at a time.
//
// The target workload needs no trace-wide knowledge: it is learned online from the gangs the
// scheduler is asked to place (PreFilter; each gang counted once, its members as pod specs with
// CPU, GPUs, share, allowed classes and memory, over the last 20,000 gangs; every spec seen is
// a target), and bootstrapped from the gangs the cache holds after a restart. Whole-GPU gangs
// on topology fleets work the same way: a member taking GPUs from an empty 8-GPU node costs an
// 8-GPU copy when 8-GPU members are common, so small members fill broken nodes first.
import type { NodeState } from '../../cache/cluster.ts';
import type { PreFilterPlugin, ScorePlugin } from '../../framework/types.ts';
import { ok } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { Selection } from '../random/tiebreak.ts';
import { FragCache, WorkloadTracker, deviceLeft, deviceLeftAfter, indexOfDevice, type Measure, type TargetPod } from '../fgd/frag.ts';

export const Name = 'Fragmentation';

/** Weight of stranded GPU thousandths against displaced ones. */
export const DEFAULT_LAMBDA = 8;
/** The sigmoid's scale in GPU thousandths: a gain of 2 GPUs scores 73, a loss of 2 scores 27. */
export const DEFAULT_TEMPERATURE = 2000;

interface Group {
  /** Thousandths per GPU (1000: whole GPUs). */
  gpuMilli: number;
  /** GPUs per pod (whole-GPU groups; 1 for shares). */
  gpus: number;
  classes: ReadonlySet<string> | undefined;
  /** Per spec of the group: CPU milli, memory bytes, p·size. */
  cpu: number[];
  mem: number[];
  weight: number[];
}

/**
 * Term (1) as a measure of a node state: Σ_t p_t·(total − copies_t·size_t). Its change under a
 * placement of d thousandths is −d·Σp + Σ_t p_t·size_t·(copies lost), so loss (1) is
 * after − before + d·gpuFreq.
 */
export class DisplacementModel implements Measure {
  private readonly groups: Group[] = [];
  /** Σ p_t over the GPU specs. */
  readonly gpuFreq: number;

  constructor(targets: readonly TargetPod[]) {
    const byKey = new Map<string, Group>();
    let freq = 0;
    for (const t of targets) {
      if (t.gpus === 0 || t.gpuMilli === 0) continue;
      freq += t.freq;
      const whole = t.gpuMilli >= 1000;
      const classes = [...new Set(t.classes)].sort().join('|');
      const key = `${whole ? 1000 : t.gpuMilli}/${whole ? t.gpus : 1}/${classes}`;
      let g = byKey.get(key);
      if (!g) {
        g = { gpuMilli: whole ? 1000 : t.gpuMilli, gpus: whole ? t.gpus : 1, classes: classes ? new Set(t.classes) : undefined, cpu: [], mem: [], weight: [] };
        byKey.set(key, g);
        this.groups.push(g);
      }
      g.cpu.push(t.cpuMilli);
      g.mem.push(t.memoryBytes ?? 0);
      g.weight.push(t.freq * g.gpus * g.gpuMilli);
    }
    this.gpuFreq = freq;
  }

  /** Copies of a group's specs the GPUs can host (before CPU and memory). */
  private byGpu(g: Group, node: NodeState, lefts: ArrayLike<number>): number {
    const n = lefts.length;
    let copies = 0;
    if (g.gpuMilli >= 1000) {
      let free = 0;
      for (let i = 0; i < n; i++) if (lefts[i]! >= 1000 && (!g.classes || g.classes.has(node.devices[i]!.className))) free++;
      copies = Math.floor(free / g.gpus);
    } else {
      for (let i = 0; i < n; i++) if (!g.classes || g.classes.has(node.devices[i]!.className)) copies += Math.floor(lefts[i]! / g.gpuMilli);
    }
    return copies;
  }

  frag(node: NodeState, cpu: number, lefts: ArrayLike<number>, memory: number): number {
    let total = 0;
    for (let i = 0; i < lefts.length; i++) total += lefts[i]!;
    if (total === 0) return 0;
    let f = this.gpuFreq * total;
    for (const g of this.groups) {
      const byGpu = this.byGpu(g, node, lefts);
      if (byGpu === 0) continue;
      for (let k = 0; k < g.cpu.length; k++) {
        const c = g.cpu[k]!;
        const m = g.mem[k]!;
        let copies = byGpu;
        if (c > 0) copies = Math.min(copies, Math.floor(Math.max(0, cpu) / c));
        if (m > 0) copies = Math.min(copies, Math.floor(Math.max(0, memory) / m));
        f -= g.weight[k]! * copies;
      }
    }
    return f;
  }
}

/** Term (2): GPU thousandths the node's CPU and memory cannot feed at the workload's mean ratios. */
export class StrandingModel implements Measure {
  /** Mean CPU milli and memory bytes the GPU specs ask per GPU thousandth (0: not weighed). */
  readonly cpuPerMilli: number;
  readonly memPerMilli: number;

  constructor(targets: readonly TargetPod[]) {
    let gpu = 0;
    let cpu = 0;
    let mem = 0;
    for (const t of targets) {
      if (t.gpus === 0 || t.gpuMilli === 0) continue;
      gpu += t.freq * t.gpus * t.gpuMilli;
      cpu += t.freq * t.cpuMilli;
      mem += t.freq * (t.memoryBytes ?? 0);
    }
    this.cpuPerMilli = gpu > 0 ? cpu / gpu : 0;
    this.memPerMilli = gpu > 0 ? mem / gpu : 0;
  }

  frag(_node: NodeState, cpu: number, lefts: ArrayLike<number>, memory: number): number {
    let total = 0;
    for (let i = 0; i < lefts.length; i++) total += lefts[i]!;
    let fed = total;
    if (this.cpuPerMilli > 0) fed = Math.min(fed, Math.max(0, cpu) / this.cpuPerMilli);
    if (this.memPerMilli > 0) fed = Math.min(fed, Math.max(0, memory) / this.memPerMilli);
    return total - fed;
  }
}

/** displacement + λ·stranding, as one measure (so one memo serves both). */
export class PlacementCost implements Measure {
  readonly displacement: DisplacementModel;
  readonly stranding: StrandingModel;

  constructor(
    targets: readonly TargetPod[],
    readonly lambda = DEFAULT_LAMBDA,
  ) {
    this.displacement = new DisplacementModel(targets);
    this.stranding = new StrandingModel(targets);
  }

  frag(node: NodeState, cpu: number, lefts: ArrayLike<number>, memory: number): number {
    return this.displacement.frag(node, cpu, lefts, memory) + this.lambda * this.stranding.frag(node, cpu, lefts, memory);
  }
}

export interface FragmentationArgs extends PluginArgs {
  /** Weight of stranded GPU (term 2). Default 8. */
  lambda?: number;
  /** Loss in GPU thousandths per unit of the sigmoid. Default 2000. */
  temperature?: number;
  /** Gangs remembered by the workload tracker. Default 20,000. */
  window?: number;
  /** A fixed target workload instead of the learned one (experiments). */
  workload?: TargetPod[];
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export function create(args: FragmentationArgs = {}): ScorePlugin & PreFilterPlugin {
  const lambda = args.lambda ?? DEFAULT_LAMBDA;
  const temperature = args.temperature ?? DEFAULT_TEMPERATURE;
  const tracker = new WorkloadTracker({ window: args.window, thresholdPct: 100, withMemory: true });
  const fixed = Array.isArray(args.workload) ? new PlacementCost(args.workload, lambda) : undefined;
  const sel = new Selection(0);
  const memo = new FragCache();
  let cost = fixed ?? new PlacementCost([], lambda);
  let version = fixed ? 0 : -1;
  return {
    name: Name,
    preFilter(ctx) {
      if (!fixed) {
        tracker.bootstrap(ctx.cache);
        tracker.observe(ctx.gang);
      }
      return ok();
    },
    score(ctx, member, node, choice) {
      if (sel.enter(ctx, member) && !fixed) {
        const targets = tracker.targets();
        if (tracker.version !== version) {
          cost = new PlacementCost(targets, lambda);
          version = tracker.version;
        }
      }
      const [before, after] = memo.beforeAfter(node, cost, version, member, choice);
      let taken = 0;
      for (const g of choice.devices) {
        const i = indexOfDevice(node, g.index);
        if (i >= 0) taken += deviceLeft(node.devices[i]!) - deviceLeftAfter(node.devices[i]!, g);
      }
      let loss = after - before + taken * cost.displacement.gpuFreq;
      // Tie-breaks, far below any real difference: a share to the device with the least left;
      // then the node left with the fewest GPU thousandths; then the node in the leaf with the
      // fewest free GPUs (whole leaves stay free); then the node that joined first.
      let left = 0;
      for (const d of node.devices) left += deviceLeft(d);
      left -= taken;
      let device = 0;
      if (choice.devices.length === 1 && !choice.devices[0]!.whole) {
        const i = indexOfDevice(node, choice.devices[0]!.index);
        if (i >= 0) device = deviceLeft(node.devices[i]!);
      }
      const leaf = ctx.cache.domains.get(node.leaf);
      const leafFree = leaf && leaf.gpus > 0 ? leaf.freeWhole / leaf.gpus : 0;
      loss += 1e-3 * (device / 1000) + 1e-4 * (left / (1000 * Math.max(1, node.devices.length))) + 1e-5 * leafFree + 1e-6 * (node.slot / (node.slot + 1000));
      return 100 * sigmoid(-loss / temperature);
    },
  };
}
