// Score: k8s4ai's fragmentation-aware placement (experimental version).
import type { NodeState } from '../../cache/cluster.ts';
import type { PreFilterPlugin, ScorePlugin } from '../../framework/types.ts';
import { ok } from '../../framework/types.ts';
import type { PluginArgs } from '../../framework/registry.ts';
import { Selection, seedOf } from '../random/tiebreak.ts';
import { FragCache, FragModel, WorkloadTracker, deviceLeft, indexOfDevice, type Measure, type TargetPod } from '../fgd/frag.ts';

export const Name = 'Fragmentation';

interface LeftoverGroup {
  /** Thousandths per GPU (1000: whole GPUs). */
  gpuMilli: number;
  /** GPUs per pod (whole-GPU groups). */
  gpus: number;
  classes: ReadonlySet<string> | undefined;
  /** cpuMilli and freq·size of each target of the group. */
  cpu: number[];
  weight: number[];
}

/**
 * Leftover measure: for each target spec, the GPU thousandths of the node that would stay idle if
 * only pods of that spec arrived from now on (copies limited by GPU fit and by CPU).
 */
export class LeftoverModel implements Measure {
  private readonly groups: LeftoverGroup[] = [];
  private readonly freqSum: number;
  constructor(readonly targets: readonly TargetPod[]) {
    const byKey = new Map<string, LeftoverGroup>();
    let freqSum = 0;
    for (const t of targets) {
      if (t.gpus === 0 || t.gpuMilli === 0) continue;
      freqSum += t.freq;
      const whole = t.gpuMilli >= 1000;
      const classes = [...new Set(t.classes)].sort().join('|');
      const key = `${whole ? 1000 : t.gpuMilli}/${whole ? t.gpus : 1}/${classes}`;
      let g = byKey.get(key);
      if (!g) {
        g = { gpuMilli: whole ? 1000 : t.gpuMilli, gpus: whole ? t.gpus : 1, classes: classes ? new Set(t.classes) : undefined, cpu: [], weight: [] };
        byKey.set(key, g);
        this.groups.push(g);
      }
      g.cpu.push(t.cpuMilli);
      g.weight.push(t.freq * g.gpus * g.gpuMilli);
    }
    this.freqSum = freqSum;
  }

  frag(node: NodeState, cpu: number, lefts: ArrayLike<number>): number {
    const n = lefts.length;
    let total = 0;
    for (let i = 0; i < n; i++) total += lefts[i]!;
    if (total === 0) return 0;
    // Σ_t p_t · (total − copies_t · size_t)
    let f = this.freqSum * total;
    for (const g of this.groups) {
      let byGpu = 0;
      if (g.gpuMilli >= 1000) {
        let free = 0;
        for (let i = 0; i < n; i++) if (lefts[i]! >= 1000 && (!g.classes || g.classes.has(node.devices[i]!.className))) free++;
        byGpu = Math.floor(free / g.gpus);
      } else {
        for (let i = 0; i < n; i++) if (!g.classes || g.classes.has(node.devices[i]!.className)) byGpu += Math.floor(lefts[i]! / g.gpuMilli);
      }
      if (byGpu === 0) continue;
      for (let k = 0; k < g.cpu.length; k++) {
        const c = g.cpu[k]!;
        const copies = c > 0 ? Math.min(byGpu, Math.floor(cpu / c)) : byGpu;
        f -= g.weight[k]! * copies;
      }
    }
    return f;
  }
}

class SumMeasure implements Measure {
  constructor(
    readonly parts: [Measure, number][],
  ) {}
  frag(node: NodeState, cpu: number, lefts: ArrayLike<number>): number {
    let f = 0;
    for (const [m, w] of this.parts) f += w * m.frag(node, cpu, lefts);
    return f;
  }
}

function buildMeasure(kind: string | undefined, targets: TargetPod[], lambda: number): Measure {
  if (kind === 'fgd') return new FragModel(targets);
  if (kind === 'hybrid') return new SumMeasure([[new LeftoverModel(targets), 1], [new FragModel(targets), lambda]]);
  return new LeftoverModel(targets);
}

export interface FragmentationArgs extends PluginArgs {
  lambda?: number;
  measure?: 'fgd' | 'leftover' | 'hybrid';
  tie?: string;
  threshold?: number;
  workload?: TargetPod[];
}

export function create(args: FragmentationArgs = {}): ScorePlugin & PreFilterPlugin {
  const tracker = new WorkloadTracker(20000, args.threshold ?? 95);
  const sel = new Selection(seedOf(args, 0), true);
  const cache = new FragCache();
  let measure: Measure = new LeftoverModel([]);
  let version = -1;
  let fixed: Measure | undefined;
  if (args.workload) fixed = buildMeasure(args.measure, args.workload, args.lambda ?? 0.5);
  const tie = args.tie ?? 'pack';
  return {
    name: Name,
    preFilter(ctx) {
      tracker.bootstrap(ctx.cache);
      tracker.observe(ctx.gang);
      return ok();
    },
    score(ctx, member, node, choice) {
      if (sel.enter(ctx, member)) {
        if (fixed) {
          measure = fixed;
          version = 0;
        } else {
          const targets = tracker.targets();
          if (tracker.version !== version) {
            measure = buildMeasure(args.measure, targets, args.lambda ?? 0.5);
            version = tracker.version;
          }
        }
      }
      const [before, after] = cache.beforeAfter(node, measure, version, member, choice);
      const delta = (after - before) / 1000;
      let tb = 0;
      if (tie === 'pack' || tie === 'packcpu') {
        // fewer GPU thousandths left on the node after placement: fuller nodes first
        let left = 0;
        for (const d of node.devices) left += deviceLeft(d);
        for (const g of choice.devices) left -= g.milli;
        tb = -left / (1000 * Math.max(1, node.devices.length));
        if (tie === 'packcpu') tb -= node.cpuFree / Math.max(1, node.cpuMilli);
        // best-fit GPU within a node
        if (choice.devices.length === 1 && !choice.devices[0]!.whole) {
          const i = indexOfDevice(node, choice.devices[0]!.index);
          tb -= (deviceLeft(node.devices[i]!) / 1000) * 0.01;
        }
      }
      return 50 - 10 * delta + 1e-3 * tb + 1e-6 * sel.jitter(node.slot);
    },
  };
}
