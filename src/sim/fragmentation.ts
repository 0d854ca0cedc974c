// GPU fragmentation of the cluster against a workload, as FGD (Weng et al., USENIX ATC'23)
// defines it: for a task shape m, the free GPU capacity of a node is fragmented when m
// cannot use it — all of the node's free GPU capacity when m does not fit on the node at
// all, otherwise the free capacity of the devices m cannot use (a partly used GPU for a
// whole-GPU task, a GPU with less free compute or memory than a share task needs). The
// cluster's fragmentation is the expectation over the workload's task shapes, weighted by
// how often each occurs, as a share of all free GPU capacity.
//
// Capacity is in GPU-milli: a whole device is 1000, a share its free compute, a MIG device
// its unused instances' compute slices out of 7.
import type { ClusterCache, DeviceState, NodeState } from '../scheduler/cache/cluster.ts';
import { deviceIsWholeFree } from '../scheduler/cache/cluster.ts';
import type { MemberRequest } from '../scheduler/framework/types.ts';

export interface TaskShape {
  gpus: number;
  milli: number;
  vramBytes: number;
  migProfile?: string;
  /** Allowed device classes (empty: any). */
  classes: string[];
  cpuMilli: number;
  memoryBytes: number;
  /** Share of the workload's GPU members with this shape (the shapes' weights sum to 1). */
  weight: number;
}

const MIG_SLICES = /^(\d+)g\./;

/** Compute slices (of 7) of a MIG profile such as 3g.40gb. */
export function migSlices(profile: string): number {
  return Number(MIG_SLICES.exec(profile)?.[1] ?? 1);
}

/** Free GPU-milli of one device. */
export function deviceFreeMilli(d: DeviceState): number {
  if (d.mig) return Math.round((1000 * d.mig.filter((m) => !m.usedBy).reduce((s, m) => s + migSlices(m.profile), 0)) / 7);
  if (d.pool) return 0;
  return d.milliFree;
}

const usesGpu = (m: MemberRequest) => m.gpus > 0 || m.gpuMilli > 0 || m.vramBytes > 0 || Boolean(m.migProfile);

/** The most frequent GPU member shapes of a workload (at most `limit`), weighted by frequency. */
export function workloadShapes(members: Iterable<MemberRequest>, limit = 32): TaskShape[] {
  const counts = new Map<string, { shape: Omit<TaskShape, 'weight'>; n: number }>();
  for (const m of members) {
    if (!usesGpu(m)) continue;
    const classes = m.acceleratorClass ? [m.acceleratorClass] : [...(m.allowedClasses ?? [])].sort();
    const shape = { gpus: m.gpus, milli: m.gpus > 0 ? 0 : m.gpuMilli, vramBytes: m.vramBytes, ...(m.migProfile ? { migProfile: m.migProfile } : {}), classes, cpuMilli: m.cpuMilli, memoryBytes: m.memoryBytes };
    const key = JSON.stringify(shape);
    const c = counts.get(key);
    if (c) c.n++;
    else counts.set(key, { shape, n: 1 });
  }
  const top = [...counts.values()].sort((a, b) => b.n - a.n).slice(0, limit);
  const total = top.reduce((s, c) => s + c.n, 0);
  return top.map((c) => ({ ...c.shape, weight: c.n / total }));
}

const classOk = (shape: TaskShape, d: DeviceState) => shape.classes.length === 0 || shape.classes.includes(d.className);

/** Fragmented GPU-milli of one node for one shape. */
export function nodeFragmentation(node: NodeState, shape: TaskShape, free = nodeFreeMilli(node)): number {
  if (free === 0) return 0;
  if (!node.ready || node.unschedulable || node.cpuFree < shape.cpuMilli || node.memoryFree < shape.memoryBytes) return free;
  let usable = 0;
  let usableMilli = 0;
  for (const d of node.devices) {
    if (!classOk(shape, d)) continue;
    let ok: boolean;
    if (shape.migProfile) ok = Boolean(d.mig?.some((m) => m.profile === shape.migProfile && !m.usedBy));
    else if (shape.gpus > 0) ok = deviceIsWholeFree(d) && d.memoryBytes >= shape.vramBytes;
    else ok = !d.mig && !d.pool && d.milliFree >= shape.milli && d.memoryFree >= shape.vramBytes && d.milliFree > 0;
    if (ok) {
      usable++;
      usableMilli += deviceFreeMilli(d);
    }
  }
  if (usable < Math.max(1, shape.gpus)) return free;
  return free - usableMilli;
}

export function nodeFreeMilli(node: NodeState): number {
  let free = 0;
  for (const d of node.devices) free += deviceFreeMilli(d);
  return free;
}

export interface Fragmentation {
  /** Expected fragmented GPU-milli over the shapes. */
  fragmentedMilli: number;
  freeMilli: number;
  /** fragmentedMilli / freeMilli (0 when nothing is free). */
  ratio: number;
}

/** The cluster's expected fragmentation for the workload's shapes. */
export function clusterFragmentation(cache: ClusterCache, shapes: readonly TaskShape[]): Fragmentation {
  let fragmented = 0;
  let free = 0;
  for (const node of cache.nodes.values()) {
    const f = nodeFreeMilli(node);
    if (f === 0) continue;
    free += f;
    for (const s of shapes) fragmented += s.weight * nodeFragmentation(node, s, f);
  }
  return { fragmentedMilli: fragmented, freeMilli: free, ratio: free ? fragmented / free : 0 };
}
