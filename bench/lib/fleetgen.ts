// Synthetic fleets for the scale and topology benchmarks, built directly as the cluster
// cache's inputs (no objects, no YAML): fast enough for 10,000 nodes in a few milliseconds.
//
// Also: seeded streams of gangs (Poisson arrivals, exponential run times) for them.
//
// The scale fleet: N nodes × 8 H100 (one NVSwitch island of 8, two NUMA nodes of 4),
// 32 nodes a leaf, 16 leaves a spine, one fabric. The last leaf and spine may be partial.
import type { DomainInput, NodeInput } from '../../src/scheduler/cache/cluster.ts';
import type { SimCluster } from '../../src/sim/cluster.ts';
import type { SimJob } from '../../src/sim/workload.ts';
import type { GangRequest, MemberRequest } from '../../src/scheduler/framework/types.ts';
import type { TopologyLevel } from '../../src/api/schema.ts';

export interface ScaleFleetOptions {
  nodes: number;
  gpusPerNode?: number;
  islandSize?: number;
  nodesPerLeaf?: number;
  leavesPerSpine?: number;
  className?: string;
}

const GiB = 2 ** 30;

export function scaleFleet(options: ScaleFleetOptions): SimCluster {
  const gpus = options.gpusPerNode ?? 8;
  const island = options.islandSize ?? 8;
  const perLeaf = options.nodesPerLeaf ?? 32;
  const perSpine = options.leavesPerSpine ?? 16;
  const className = options.className ?? 'h100-sxm-80gb';
  const attrs = { productName: 'NVIDIA H100 80GB HBM3', architecture: 'hopper', memory: String(80 * GiB), fp8: 'true', bf16: 'true', vendor: 'nvidia' };
  const domains: DomainInput[] = [{ name: 'fabric', level: 'fabric' }];
  const nodes: NodeInput[] = [];
  const leaves = Math.ceil(options.nodes / perLeaf);
  for (let l = 0; l < leaves; l++) {
    const spine = `spine-${Math.floor(l / perSpine) + 1}`;
    if (l % perSpine === 0) domains.push({ name: spine, level: 'spine', parent: 'fabric' });
    const leaf = `leaf-${Math.floor(l / perSpine) + 1}-${(l % perSpine) + 1}`;
    domains.push({ name: leaf, level: 'leaf', parent: spine });
    for (let n = 0; n < perLeaf && l * perLeaf + n < options.nodes; n++) {
      const name = `${leaf.replace('leaf-', 'node-')}-${n + 1}`;
      nodes.push({
        name,
        leaf,
        cpuMilli: 224_000,
        memoryBytes: 2048 * GiB,
        devices: Array.from({ length: gpus }, (_, i) => ({
          index: i,
          uuid: `${name}-gpu${i}`,
          className,
          attrs,
          memoryBytes: 80 * GiB,
          reservedBytes: GiB / 2,
          numa: i < gpus / 2 ? 0 : 1,
          island: Math.floor(i / island),
        })),
      });
    }
  }
  return { name: `scale-${options.nodes}`, domains, nodes, classes: [className] };
}

// ---- gang streams ------------------------------------------------------------------------------

import { seededRandom } from '../../src/lib/random.ts';

export { seededRandom };

export interface GangKind {
  /** GPUs of the whole gang. */
  gpus: number;
  /** GPUs per member (the gang has gpus / perMember members); default min(8, gpus). */
  perMember?: number;
  /** Relative frequency. */
  weight: number;
  requiredLevel?: TopologyLevel;
  preferredLevel?: TopologyLevel;
  acceleratorClass?: string;
}

export interface GangStreamOptions {
  kinds: readonly GangKind[];
  count: number;
  seed: number;
  /** Offered load: mean GPUs asked for × mean run time × arrival rate / fleet GPUs. */
  load: number;
  fleetGpus: number;
  /** Mean run time in seconds (exponentially distributed). */
  meanDurationS: number;
  /** Gang id prefix. */
  prefix?: string;
}

/** Poisson arrivals of gangs drawn from `kinds`, exponential run times, sized for the offered load. */
export function gangStream(o: GangStreamOptions): SimJob[] {
  const random = seededRandom(o.seed);
  const totalWeight = o.kinds.reduce((s, k) => s + k.weight, 0);
  const meanGpus = o.kinds.reduce((s, k) => s + (k.weight / totalWeight) * k.gpus, 0);
  const rate = (o.load * o.fleetGpus) / (meanGpus * o.meanDurationS);
  const exp = (mean: number) => -Math.log(1 - random()) * mean;
  const jobs: SimJob[] = [];
  let t = 0;
  for (let i = 0; i < o.count; i++) {
    let pick = random() * totalWeight;
    let kind = o.kinds[o.kinds.length - 1]!;
    for (const k of o.kinds) {
      pick -= k.weight;
      if (pick < 0) {
        kind = k;
        break;
      }
    }
    const per = kind.perMember ?? Math.min(8, kind.gpus);
    const n = Math.max(1, Math.ceil(kind.gpus / per));
    const id = `${o.prefix ?? 'g'}${i}`;
    const members: MemberRequest[] = Array.from({ length: n }, (_, m) => ({
      id: `worker-${m}`,
      role: 'worker',
      index: m,
      gpus: per,
      gpuMilli: 0,
      vramBytes: 0,
      cpuMilli: 8000 * per,
      memoryBytes: 64 * GiB * per,
      ...(kind.acceleratorClass ? { acceleratorClass: kind.acceleratorClass } : {}),
    }));
    const gang: GangRequest = {
      id: `bench/${id}`,
      namespace: 'bench',
      name: id,
      queue: 'default',
      priority: 0,
      createdAt: Math.round(t * 1000),
      members,
      minMember: n,
      ...(kind.requiredLevel ? { requiredLevel: kind.requiredLevel } : {}),
      ...(kind.preferredLevel ? { preferredLevel: kind.preferredLevel } : {}),
    };
    jobs.push({ gang, arrival: t, duration: exp(o.meanDurationS) });
    t += exp(1 / rate);
  }
  return jobs;
}
