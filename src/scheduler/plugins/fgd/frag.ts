// GPU fragmentation as the FGD paper measures it (Weng et al., USENIX ATC'23, §4; the
// simulator's pkg/utils/frag.go), in our own terms.
//
// A target workload M is a list of pod specs m (CPU, GPUs, per-GPU share, allowed models) with
// frequencies p_m. For a node n and a spec m:
//   - m runs nowhere on n (CPU-only spec, wrong GPU model, too few GPUs with m's share free,
//     or too little CPU): every idle GPU thousandth of n is a fragment for m;
//   - m can run on n: only the idle thousandths on GPUs whose remainder is below m's share are.
// F_n = Σ_m p_m · F_n(m). The target workload is the set of most popular specs that together
// cover ≥ 95% of the pods, frequencies renormalised (the simulator's GetTypicalPods).
//
// Everything here is plain functions over a node's CPU left and per-device GPU thousandths
// left, so plugins can evaluate the node before and after a placement cheaply.
import type { DeviceState, NodeState } from '../../cache/cluster.ts';
import type { ClusterCache } from '../../cache/cluster.ts';
import type { DeviceChoice, DeviceGrant, GangRequest, MemberRequest } from '../../framework/types.ts';

/** What one pod (member) asks for, as the fragmentation model sees it. */
export interface PodSpec {
  cpuMilli: number;
  /** GPUs (0: CPU only). */
  gpus: number;
  /** Thousandths of each GPU (1000 for whole GPUs; 0 when gpus is 0). */
  gpuMilli: number;
  /** Allowed accelerator classes (GPU models); empty: any. */
  classes: readonly string[];
  /** Host memory in bytes, when the model weighs it (FGD's does not). */
  memoryBytes?: number;
}

export interface TargetPod extends PodSpec {
  /** Frequency in the target workload, 0..1; the list sums to 1. */
  freq: number;
}

export const DEFAULT_POPULARITY_THRESHOLD = 95;

/** The spec of a member request. Memory-only shares count as the smallest share. */
export function specOfMember(m: MemberRequest): PodSpec {
  const classes = [...(m.allowedClasses ?? []), ...(m.acceleratorClass ? [m.acceleratorClass] : [])];
  if (m.gpus > 0) return { cpuMilli: m.cpuMilli, gpus: m.gpus, gpuMilli: 1000, classes };
  if (m.gpuMilli > 0) return { cpuMilli: m.cpuMilli, gpus: 1, gpuMilli: m.gpuMilli, classes };
  if (m.vramBytes > 0 || m.migProfile) return { cpuMilli: m.cpuMilli, gpus: 1, gpuMilli: 1, classes };
  return { cpuMilli: m.cpuMilli, gpus: 0, gpuMilli: 0, classes: [] };
}

export function specKey(s: PodSpec): string {
  return `${s.cpuMilli}/${s.gpus}/${s.gpuMilli}/${s.classes.join('|')}${s.memoryBytes === undefined ? '' : `/${s.memoryBytes}`}`;
}

/**
 * The popular specs covering ≥ thresholdPct% of the counted pods, most popular first, with
 * frequencies renormalised to sum to 1 (GetTypicalPods with podIncreaseStep 1, gpuResWeight 0,
 * CPU pods included). Ties in count go to the larger spec first, as the simulator sorts.
 * Specs with zero CPU count as 100m, kube-scheduler's non-zero default.
 */
export function typicalPods(specs: Iterable<readonly [PodSpec, number]>, thresholdPct = DEFAULT_POPULARITY_THRESHOLD): TargetPod[] {
  const merged = new Map<string, { spec: PodSpec; count: number }>();
  let total = 0;
  for (const [raw, count] of specs) {
    if (count <= 0) continue;
    const spec = { ...raw, cpuMilli: raw.cpuMilli || 100, classes: [...raw.classes] };
    const key = specKey(spec);
    const e = merged.get(key);
    if (e) e.count += count;
    else merged.set(key, { spec, count });
    total += count;
  }
  if (total === 0) return [];
  const sorted = [...merged.values()].sort(
    (a, b) =>
      b.count - a.count ||
      b.spec.cpuMilli - a.spec.cpuMilli ||
      b.spec.gpuMilli - a.spec.gpuMilli ||
      b.spec.gpus - a.spec.gpus ||
      (a.spec.classes.join('|') < b.spec.classes.join('|') ? 1 : a.spec.classes.join('|') > b.spec.classes.join('|') ? -1 : 0),
  );
  const expected = (thresholdPct * total) / 100;
  const out: TargetPod[] = [];
  let cum = 0;
  for (const e of sorted) {
    if (cum >= expected) break;
    cum += e.count;
    out.push({ ...e.spec, freq: e.count });
  }
  for (const t of out) t.freq /= cum;
  return out;
}

/** Counts specs of a list (e.g. a trace's pods) for typicalPods(). */
export function countSpecs(specs: Iterable<PodSpec>): [PodSpec, number][] {
  const m = new Map<string, [PodSpec, number]>();
  for (const s of specs) {
    const key = specKey(s);
    const e = m.get(key);
    if (e) e[1]++;
    else m.set(key, [s, 1]);
  }
  return [...m.values()];
}

// ---- device view ----------------------------------------------------------------------------

/**
 * GPU thousandths a share could still use on a device: compute left, bounded by the memory
 * left in proportion. MIG-partitioned and pool-bound devices take no shares (0).
 */
export function deviceLeft(d: DeviceState): number {
  if (d.mig || d.pool) return 0;
  if (d.memoryBytes > 0 && d.memoryFree < d.memoryBytes) return Math.max(0, Math.min(d.milliFree, Math.floor((1000 * d.memoryFree) / d.memoryBytes)));
  return d.milliFree;
}

/** deviceLeft() after a grant on that device. */
export function deviceLeftAfter(d: DeviceState, g: DeviceGrant): number {
  if (g.migInstance !== undefined) return deviceLeft(d);
  const milli = d.milliFree - g.milli;
  const mem = d.memoryFree - g.memoryBytes;
  if (d.memoryBytes > 0 && mem < d.memoryBytes) return Math.max(0, Math.min(milli, Math.floor((1000 * mem) / d.memoryBytes)));
  return Math.max(0, milli);
}

/** Per-device GPU thousandths left (into `out`, which is returned). */
export function leftsOf(node: NodeState, out: number[] = []): number[] {
  out.length = node.devices.length;
  for (let i = 0; i < node.devices.length; i++) out[i] = deviceLeft(node.devices[i]!);
  return out;
}

// ---- the fragmentation measure --------------------------------------------------------------

interface Group {
  /** Share per GPU of the group's specs. */
  gpuMilli: number;
  /** Index of the class set (allowed models) in FragModel.classSets. */
  classSet: number;
  /** Targets of the group: indices into FragModel.targets. */
  targets: number[];
}

/** A fragmentation measure of a node state: CPU milli left and per-device GPU thousandths left. */
export interface Measure {
  /** `memory`: host memory left, bytes (measures that ignore memory ignore it). */
  frag(node: NodeState, cpu: number, lefts: ArrayLike<number>, memory: number): number;
}

/**
 * F_n for one target workload, fast: specs are grouped by (share, allowed models) so that one
 * pass over a node's devices per group serves every spec of the group.
 */
export class FragModel implements Measure {
  readonly targets: readonly TargetPod[];
  /** Σ p over CPU-only specs: their whole idle GPU capacity is always a fragment. */
  private readonly cpuOnly: number;
  private readonly groups: Group[] = [];
  private readonly classSets: (ReadonlySet<string> | undefined)[] = [];
  private readonly masks = new WeakMap<NodeState, Uint8Array>();

  constructor(targets: readonly TargetPod[]) {
    this.targets = targets;
    let cpuOnly = 0;
    const setIndex = new Map<string, number>();
    const groupIndex = new Map<string, Group>();
    targets.forEach((t, i) => {
      if (t.gpus === 0 || t.gpuMilli === 0) {
        cpuOnly += t.freq;
        return;
      }
      const setKey = [...new Set(t.classes)].sort().join('|');
      let cs = setIndex.get(setKey);
      if (cs === undefined) {
        cs = this.classSets.length;
        setIndex.set(setKey, cs);
        this.classSets.push(setKey ? new Set(t.classes) : undefined);
      }
      const gk = `${t.gpuMilli}/${cs}`;
      let g = groupIndex.get(gk);
      if (!g) {
        g = { gpuMilli: t.gpuMilli, classSet: cs, targets: [] };
        groupIndex.set(gk, g);
        this.groups.push(g);
      }
      g.targets.push(i);
    });
    this.cpuOnly = cpuOnly;
  }

  get empty(): boolean {
    return this.targets.length === 0;
  }

  /** Which devices of the node each class set may use: masks[cs * devices + i]. */
  private maskOf(node: NodeState): Uint8Array {
    let m = this.masks.get(node);
    if (m && m.length === this.classSets.length * node.devices.length) return m;
    const n = node.devices.length;
    m = new Uint8Array(this.classSets.length * n);
    this.classSets.forEach((set, cs) => {
      for (let i = 0; i < n; i++) m![cs * n + i] = !set || set.has(node.devices[i]!.className) ? 1 : 0;
    });
    this.masks.set(node, m);
    return m;
  }

  /** F_n for the node's devices with `lefts` thousandths left and `cpu` CPU milli left. */
  frag(node: NodeState, cpu: number, lefts: ArrayLike<number>, _memory?: number): number {
    const n = lefts.length;
    let total = 0;
    for (let i = 0; i < n; i++) total += lefts[i]!;
    if (total === 0) return 0;
    let f = this.cpuOnly * total;
    const mask = this.maskOf(node);
    for (const g of this.groups) {
      const base = g.classSet * n;
      let usable = 0;
      let fits = 0;
      let frag = 0;
      for (let i = 0; i < n; i++) {
        const left = lefts[i]!;
        if (mask[base + i]) {
          usable++;
          if (left >= g.gpuMilli) fits++;
          else frag += left;
        } else {
          frag += left;
        }
      }
      for (const ti of g.targets) {
        const t = this.targets[ti]!;
        // Runs here: only the GPUs too small for it are fragments; otherwise all of it is.
        f += t.freq * (usable > 0 && fits >= t.gpus && cpu >= t.cpuMilli ? frag : total);
      }
    }
    return f;
  }
}

// ---- the workload seen so far ---------------------------------------------------------------

export interface TrackerOptions {
  /** Distinct gangs remembered (a sliding window of the most recent). Default 20,000. */
  window?: number;
  /** Popularity threshold, % of the counted members the target specs must cover. Default 95. */
  thresholdPct?: number;
  /** Rebuild the target list at most once per this many arrivals, once 1,000 have been seen. Default 250. */
  rebuildEvery?: number;
  /** Count host memory as part of a spec (FGD's specs have none). Default false. */
  withMemory?: boolean;
}

/**
 * The distribution of what a scheduler is asked for, learned online: each gang it attempts is
 * counted once (by id; each member a pod spec), over a sliding window of the most recent
 * arrivals, bootstrapped from what the cache holds (the running gangs) when nothing has
 * arrived yet. No trace-wide knowledge: the control plane and the benchmarks learn it alike.
 */
export class WorkloadTracker {
  private readonly seen = new Set<string>();
  private readonly order: string[] = [];
  private head = 0;
  private readonly specsOf = new Map<string, string[]>();
  private readonly counts = new Map<string, [PodSpec, number]>();
  private cached: FragModel | undefined;
  private dirty = true;
  private arrivals = 0;
  private lastBuilt = 0;
  private bootstrapped = false;
  private targetList: TargetPod[] = [];
  private readonly window: number;
  private readonly thresholdPct: number;
  private readonly rebuildEvery: number;
  private readonly withMemory: boolean;
  /** Increases whenever targets() changes. */
  version = 0;

  constructor(o: TrackerOptions = {}) {
    this.window = o.window ?? 20000;
    this.thresholdPct = o.thresholdPct ?? DEFAULT_POPULARITY_THRESHOLD;
    this.rebuildEvery = o.rebuildEvery ?? 250;
    this.withMemory = o.withMemory ?? false;
  }

  /** Counts a gang the first time it is seen. */
  observe(gang: GangRequest): void {
    if (this.seen.has(gang.id)) return;
    this.add(
      gang.id,
      gang.members.map((m) => this.spec(m)),
    );
    this.arrivals++;
  }

  /** Counts what the cache holds, once, while nothing has been observed. */
  bootstrap(cache: ClusterCache): void {
    if (this.bootstrapped || this.seen.size) return;
    this.bootstrapped = true;
    for (const id of cache.gangIds()) {
      this.add(
        id,
        cache.holding(id).map((p) => this.spec(p.member)),
      );
    }
  }

  /** Gangs counted now. */
  get size(): number {
    return this.seen.size;
  }

  private spec(m: MemberRequest): PodSpec {
    const s = specOfMember(m);
    return this.withMemory ? { ...s, memoryBytes: m.memoryBytes } : s;
  }

  private add(id: string, specs: PodSpec[]): void {
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.order.push(id);
    const keys: string[] = [];
    for (const s of specs) {
      const key = specKey(s);
      keys.push(key);
      const e = this.counts.get(key);
      if (e) e[1]++;
      else this.counts.set(key, [s, 1]);
    }
    this.specsOf.set(id, keys);
    while (this.order.length - this.head > this.window) {
      const old = this.order[this.head++]!;
      this.seen.delete(old);
      for (const key of this.specsOf.get(old) ?? []) {
        const e = this.counts.get(key);
        if (e && --e[1] <= 0) this.counts.delete(key);
      }
      this.specsOf.delete(old);
    }
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
    this.dirty = true;
  }

  /** The current target workload (rebuilt at most every `rebuildEvery` arrivals once warm). */
  targets(): TargetPod[] {
    const stale = this.dirty && (this.version === 0 || this.arrivals < 1000 || this.arrivals - this.lastBuilt >= this.rebuildEvery);
    if (stale) {
      this.targetList = typicalPods(this.counts.values(), this.thresholdPct);
      this.cached = undefined;
      this.dirty = false;
      this.lastBuilt = this.arrivals;
      this.version++;
    }
    return this.targetList;
  }

  /** The FGD fragmentation model for the current target workload. */
  model(): FragModel {
    const targets = this.targets();
    this.cached ??= new FragModel(targets);
    return this.cached;
  }
}

// ---- memo of per-node values ------------------------------------------------------------------

interface Entry {
  cpu: number;
  memory: number;
  lefts: number[];
  version: number;
  before: number;
  after: Map<number, number>;
}

/**
 * A node's fragmentation now and after candidate placements, memoised per node until the node
 * (its CPU or any device's GPU left) or the measure changes. Placements are keyed by what they
 * do to the node: the member's spec, and the device left before and after (a share), or the
 * number of whole GPUs taken — so the same spec on a node in the same state is computed once
 * across choices, selections and cycles.
 */
export class FragCache {
  private readonly entries: (Entry | undefined)[] = [];
  private readonly specIds = new Map<string, number>();
  private lastMember: MemberRequest | undefined;
  private lastSpec = 0;
  private readonly scratch: number[] = [];

  private entry(node: NodeState, measure: Measure, version: number): Entry {
    let e = this.entries[node.slot];
    const n = node.devices.length;
    let valid = e !== undefined && e.version === version && e.cpu === node.cpuFree && e.memory === node.memoryFree && e.lefts.length === n;
    if (valid) {
      for (let i = 0; i < n; i++) {
        if (e!.lefts[i] !== deviceLeft(node.devices[i]!)) {
          valid = false;
          break;
        }
      }
    }
    if (!valid) {
      const lefts = leftsOf(node, e?.lefts ?? []);
      e = { cpu: node.cpuFree, memory: node.memoryFree, lefts, version, before: measure.frag(node, node.cpuFree, lefts, node.memoryFree), after: e?.after ?? new Map() };
      e.after.clear();
      this.entries[node.slot] = e;
    }
    return e!;
  }

  private specId(member: MemberRequest): number {
    if (member === this.lastMember) return this.lastSpec;
    const key = `${member.cpuMilli}/${member.gpus}/${member.gpuMilli}/${member.vramBytes}/${member.memoryBytes}/${member.migProfile ?? ''}`;
    let id = this.specIds.get(key);
    if (id === undefined) {
      id = this.specIds.size;
      this.specIds.set(key, id);
    }
    this.lastMember = member;
    this.lastSpec = id;
    return id;
  }

  /** The node's fragmentation now. */
  before(node: NodeState, measure: Measure, version: number): number {
    return this.entry(node, measure, version).before;
  }

  /** [now, after placing `choice` for `member`]. */
  beforeAfter(node: NodeState, measure: Measure, version: number, member: MemberRequest, choice: DeviceChoice): [number, number] {
    const e = this.entry(node, measure, version);
    const devs = choice.devices;
    let key: number | undefined;
    let at = -1;
    // key = spec·K² + (device left before)·K + (left after); 1001/1002 mark no device / whole GPUs.
    const K = 1004;
    if (devs.length === 0) key = this.specId(member) * K * K + 1001 * K;
    else if (devs.every((g) => g.whole)) key = this.specId(member) * K * K + 1002 * K + devs.length;
    else if (devs.length === 1 && devs[0]!.migInstance === undefined) {
      at = indexOfDevice(node, devs[0]!.index);
      if (at >= 0) key = this.specId(member) * K * K + e.lefts[at]! * K + deviceLeftAfter(node.devices[at]!, devs[0]!);
    }
    if (key !== undefined) {
      const hit = e.after.get(key);
      if (hit !== undefined) return [e.before, hit];
    }
    const s = this.scratch;
    s.length = e.lefts.length;
    for (let i = 0; i < s.length; i++) s[i] = e.lefts[i]!;
    for (const g of devs) {
      const i = at >= 0 ? at : indexOfDevice(node, g.index);
      if (i >= 0) s[i] = deviceLeftAfter(node.devices[i]!, g);
    }
    const after = measure.frag(node, node.cpuFree - member.cpuMilli, s, node.memoryFree - member.memoryBytes);
    if (key !== undefined) e.after.set(key, after);
    return [e.before, after];
  }
}

/** Position of device `index` in node.devices (devices are usually listed by index). */
export function indexOfDevice(node: NodeState, index: number): number {
  if (node.devices[index]?.index === index) return index;
  return node.devices.findIndex((d) => d.index === index);
}
