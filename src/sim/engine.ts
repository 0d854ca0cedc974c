// The trace simulator: a discrete-event replay on a virtual clock, through the very
// Framework the control plane runs (same profiles, same plugins, same cluster cache).
//
// Events are arrivals (a gang is submitted) and departures (a placed gang finishes and
// frees what it held). At each instant departures are applied first, then arrivals; a new
// gang is tried at once; gangs that do not fit wait in a pending queue, kept in the
// profile's queue-sort order and retried, in that order, whenever capacity is freed.
// Within one retry pass a gang identical in shape to one that just failed is not tried
// again (capacity only shrinks during a pass), as kube-scheduler parks pods until a
// cluster event could make them fit. Nothing sleeps: the clock jumps to the next event.
import type { TopologyLevel } from '../api/schema.ts';
import type { ClusterCache } from '../scheduler/cache/cluster.ts';
import type { Framework } from '../scheduler/framework/framework.ts';
import { createFramework, type ProfileConfig } from '../scheduler/framework/profiles.ts';
import { Code, type GangPlacement, type GangRequest } from '../scheduler/framework/types.ts';
import { buildCache, type SimCluster } from './cluster.ts';
import { clusterFragmentation, migSlices, workloadShapes, type TaskShape } from './fragmentation.ts';
import { MinHeap } from './heap.ts';
import { judgedForTopology, levelsAboveNode, lowestFeasibleLevel, spanOf, SPAN_LEVELS } from './topology.ts';
import type { SimJob } from './workload.ts';

export interface SimOptions {
  cluster: SimCluster;
  /** The workload; sorted by arrival here. */
  jobs: readonly SimJob[];
  /** Scheduling profile (name or configuration); default the default profile. */
  profile?: string | ProfileConfig;
  /** A gang that does not fit when it arrives fails for good (FGD's procedure); default false: it waits. */
  failUnplaced?: boolean;
  /** Seconds a pending gang waits before giving up, for gangs without their own timeout. */
  maxWait?: number;
  /** Points on the allocation/fragmentation timeline (0: none; default 200). */
  samples?: number;
  /** Judge the topology of multi-member whole-GPU gangs (default true). */
  topology?: boolean;
  /** Called now and then with the number of gangs that have arrived. */
  onProgress?: (arrived: number, total: number, now: number) => void;
}

export type GangState = 'placed' | 'failed' | 'pending';

export interface GangOutcome {
  id: string;
  arrival: number;
  members: number;
  /** GPU-equivalents asked for: whole GPUs plus shares and MIG slices. */
  gpus: number;
  state: GangState;
  start?: number;
  end?: number;
  /** Seconds between arrival and placement. */
  wait?: number;
  /** Why it failed or is still pending (the scheduler's last explanation). */
  reason?: string;
  /** Scheduling attempts made. */
  attempts: number;
  /** Wall-clock milliseconds of the attempt that placed it. */
  latencyMs?: number;
  domain?: string;
  /** Level of the lowest domain holding every member. */
  level?: TopologyLevel;
  /** Lowest level at which one domain could have held it (multi-member whole-GPU gangs). */
  lowestLevel?: TopologyLevel;
  /** Placed within a domain of the lowest level that could have held it. */
  withinLowest?: boolean;
  nodes?: number;
  leaves?: number;
}

export interface TimelinePoint {
  /** Virtual seconds. */
  t: number;
  /** Allocated GPU capacity / all GPU capacity. */
  allocation: number;
  /** Expected fragmented share of free GPU capacity (FGD), when computed. */
  fragmentation?: number;
  running: number;
  pending: number;
}

export interface TopologySummary {
  /** Placed multi-member whole-GPU gangs. */
  judged: number;
  withinLowest: number;
  /** withinLowest / judged. */
  withinLowestShare: number;
  meanLeaves: number;
  meanNodes: number;
  meanLevelsAboveNode: number;
}

export interface SimSummary {
  arrived: number;
  placed: number;
  failed: number;
  /** Never placed by the end (still waiting). */
  pending: number;
  membersPlaced: number;
  waitMeanS: number;
  waitP99S: number;
  /** Time-weighted mean of the allocation between the first arrival and the last placement. */
  allocationMean: number;
  allocationPeak: number;
  fragmentationMean: number;
  topology: TopologySummary;
  /** Virtual seconds simulated. */
  simulatedS: number;
}

export interface SimResult {
  cluster: { name: string; nodes: number; gpus: number };
  policy: string;
  summary: SimSummary;
  gangs: GangOutcome[];
  timeline: TimelinePoint[];
  /** Wall-clock milliseconds of the whole run, and of the Framework's schedule calls alone. */
  wallMs: number;
  scheduleMs: number;
  attempts: number;
}

interface JobState {
  job: SimJob;
  out: GangOutcome;
  shape: string;
  deadline: number;
  /** GPU-milli held while running. */
  milli: number;
  lowest?: TopologyLevel;
}

/** A gang's GPU-equivalents: whole GPUs, compute shares, MIG slices (of 7). */
export function gangGpuEquivalents(gang: GangRequest): number {
  let g = 0;
  for (const m of gang.members) g += m.gpus > 0 ? m.gpus : m.migProfile ? migSlices(m.migProfile) / 7 : m.gpuMilli / 1000;
  return Math.round(g * 1000) / 1000;
}

function shapeKey(gang: GangRequest): string {
  return JSON.stringify([gang.requiredLevel ?? '', gang.minMember, gang.members.map(({ id: _id, index: _index, role: _role, ...rest }) => rest)]);
}

/** GPU-milli a placement holds: 1000 a whole device, the share's compute (or memory, if larger), MIG slices. */
function placementMilli(cache: ClusterCache, placement: GangPlacement): number {
  let milli = 0;
  for (const m of placement.members) {
    const node = cache.nodes.get(m.node);
    for (const g of m.devices) {
      if (g.whole) milli += 1000;
      else if (g.migProfile) milli += Math.round((1000 * migSlices(g.migProfile)) / 7);
      else {
        const dev = node?.devices.find((d) => d.index === g.index);
        const memShare = dev?.memoryBytes ? Math.round((1000 * g.memoryBytes) / dev.memoryBytes) : 0;
        milli += Math.max(g.milli, g.milli ? 0 : memShare);
      }
    }
  }
  return milli;
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export class Simulator {
  readonly cache: ClusterCache;
  readonly framework: Framework;
  private readonly states: JobState[];
  private readonly departures = new MinHeap<JobState>();
  private pending: JobState[] = [];
  private readonly shapes: TaskShape[];
  private readonly totalMilli: number;
  private allocMilli = 0;
  private running = 0;
  private now = 0;
  private scheduleMs = 0;
  private attempts = 0;
  private readonly changes: { t: number; alloc: number }[] = [];
  private readonly timeline: TimelinePoint[] = [];
  private lastPlacement = -Infinity;

  constructor(private readonly options: SimOptions) {
    this.cache = buildCache(options.cluster);
    this.framework = createFramework(this.cache, options.profile);
    const jobs = [...options.jobs].sort((a, b) => a.arrival - b.arrival);
    this.states = jobs.map((job) => {
      const timeout = job.timeout ?? options.maxWait;
      return {
        job,
        shape: shapeKey(job.gang),
        deadline: timeout === undefined ? Infinity : job.arrival + timeout,
        milli: 0,
        out: { id: job.gang.id, arrival: job.arrival, members: job.gang.members.length, gpus: gangGpuEquivalents(job.gang), state: 'pending', attempts: 0 },
      };
    });
    this.shapes = workloadShapes(jobs.flatMap((j) => j.gang.members));
    let devices = 0;
    for (const n of this.cache.nodes.values()) devices += n.devices.length;
    this.totalMilli = devices * 1000;
  }

  run(): SimResult {
    const started = performance.now();
    const { states, options } = this;
    const total = states.length;
    const sampleCount = options.samples ?? 200;
    const first = states[0]?.job.arrival ?? 0;
    const last = states[total - 1]?.job.arrival ?? 0;
    const durations = states.map((s) => s.job.duration).filter((d): d is number => d !== undefined);
    const meanDuration = durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : 0;
    const step = sampleCount > 0 ? (last - first + meanDuration) / sampleCount || 1 : Infinity;
    let nextSample = first;
    const progressEvery = Math.max(1, Math.floor(total / 200));
    let ai = 0;
    this.now = first;
    while (ai < total || this.departures.size) {
      const t = Math.min(states[ai]?.job.arrival ?? Infinity, this.departures.peekKey());
      this.now = t;
      let freed = false;
      while (this.departures.size && this.departures.peekKey() <= t) {
        this.depart(this.departures.pop()!);
        freed = true;
      }
      const arrived: JobState[] = [];
      while (ai < total && states[ai]!.job.arrival <= t) {
        arrived.push(states[ai]!);
        ai++;
        if (options.onProgress && ai % progressEvery === 0) options.onProgress(ai, total, t);
      }
      if (arrived.length || (freed && this.pending.length)) this.schedulePass(this.inQueueOrder(arrived), freed);
      this.recordChange(t);
      if (t >= nextSample) {
        this.sample(t);
        nextSample = t + step;
      }
    }
    for (const s of this.pending) {
      if (s.deadline <= this.now) this.fail(s, `gave up after waiting ${Math.round(s.deadline - s.job.arrival)}s`);
    }
    if (sampleCount > 0) this.sample(this.now);
    options.onProgress?.(total, total, this.now);
    return this.result(performance.now() - started, first);
  }

  // ---- events ------------------------------------------------------------------------------

  private depart(s: JobState): void {
    this.cache.release(s.job.gang.id);
    this.allocMilli -= s.milli;
    this.running--;
  }

  /** Tries the arrivals (already in queue order), and every pending gang too when capacity was freed. */
  private schedulePass(arrived: JobState[], freed: boolean): void {
    const candidates = freed ? this.merge(this.pending, arrived) : arrived;
    const failedShapes = new Set<string>();
    const waiting: JobState[] = [];
    for (const s of candidates) {
      if (s.deadline < this.now) {
        this.fail(s, `gave up after waiting ${Math.round(s.deadline - s.job.arrival)}s`);
        continue;
      }
      if (failedShapes.has(s.shape)) {
        waiting.push(s);
        continue;
      }
      if (this.attempt(s)) continue;
      if (s.out.state === 'failed') continue;
      if (this.options.failUnplaced) {
        this.fail(s, s.out.reason ?? 'does not fit');
        continue;
      }
      failedShapes.add(s.shape);
      waiting.push(s);
    }
    this.pending = freed ? waiting : this.merge(this.pending, waiting);
  }

  private attempt(s: JobState): boolean {
    const gang = s.job.gang;
    const judged = this.options.topology !== false && judgedForTopology(gang);
    const lowest = judged ? lowestFeasibleLevel(this.cache, gang) : undefined;
    const t0 = performance.now();
    const result = this.framework.schedule(gang);
    const dt = performance.now() - t0;
    this.scheduleMs += dt;
    this.attempts++;
    s.out.attempts++;
    if (!result.placement) {
      s.out.reason = result.status.reason ?? result.status.code;
      if (result.status.code === Code.UnschedulableAndUnresolvable) this.fail(s, s.out.reason);
      return false;
    }
    const placement = result.placement;
    s.milli = placementMilli(this.cache, placement);
    this.allocMilli += s.milli;
    this.running++;
    this.lastPlacement = this.now;
    const span = spanOf(this.cache, placement);
    Object.assign(s.out, {
      state: 'placed' as const,
      start: this.now,
      wait: this.now - s.job.arrival,
      latencyMs: dt,
      domain: placement.domain,
      level: span.level,
      nodes: span.nodes,
      leaves: span.leaves,
    });
    delete s.out.reason;
    if (judged && lowest) {
      s.out.lowestLevel = lowest;
      s.out.withinLowest = SPAN_LEVELS.indexOf(span.level) <= SPAN_LEVELS.indexOf(lowest);
    }
    if (s.job.duration !== undefined) {
      s.out.end = this.now + s.job.duration;
      this.departures.push(s.out.end, s);
    }
    return true;
  }

  private fail(s: JobState, reason: string): void {
    s.out.state = 'failed';
    s.out.reason = reason;
  }

  private inQueueOrder(states: JobState[]): JobState[] {
    if (states.length < 2) return states;
    const less = this.framework.profile.queueSort.less.bind(this.framework.profile.queueSort);
    return states.sort((x, y) => (less(x.job.gang, y.job.gang) ? -1 : less(y.job.gang, x.job.gang) ? 1 : 0));
  }

  /** Two lists in queue order, merged. */
  private merge(a: JobState[], b: JobState[]): JobState[] {
    if (!a.length) return b;
    if (!b.length) return a;
    const less = (x: JobState, y: JobState) => this.framework.profile.queueSort.less(x.job.gang, y.job.gang);
    const out: JobState[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) out.push(less(b[j]!, a[i]!) ? b[j++]! : a[i++]!);
    while (i < a.length) out.push(a[i++]!);
    while (j < b.length) out.push(b[j++]!);
    return out;
  }

  // ---- measurements ------------------------------------------------------------------------

  private recordChange(t: number): void {
    const lastChange = this.changes[this.changes.length - 1];
    if (lastChange && lastChange.alloc === this.allocMilli) return;
    if (lastChange && lastChange.t === t) lastChange.alloc = this.allocMilli;
    else this.changes.push({ t, alloc: this.allocMilli });
  }

  private sample(t: number): void {
    const point: TimelinePoint = { t, allocation: this.totalMilli ? this.allocMilli / this.totalMilli : 0, running: this.running, pending: this.pending.length };
    if (this.shapes.length) point.fragmentation = clusterFragmentation(this.cache, this.shapes).ratio;
    const prev = this.timeline[this.timeline.length - 1];
    if (prev && prev.t === t) this.timeline[this.timeline.length - 1] = point;
    else this.timeline.push(point);
  }

  /** Time-weighted mean allocation over [from, to], and the peak. */
  private allocationStats(from: number, to: number): { mean: number; peak: number } {
    let peak = 0;
    for (const c of this.changes) peak = Math.max(peak, c.alloc);
    if (!(to > from)) {
      const at = [...this.changes].reverse().find((c) => c.t <= to);
      return { mean: (at?.alloc ?? 0) / (this.totalMilli || 1), peak: peak / (this.totalMilli || 1) };
    }
    let area = 0;
    for (let i = 0; i < this.changes.length; i++) {
      const c = this.changes[i]!;
      const end = Math.min(to, this.changes[i + 1]?.t ?? to);
      const start = Math.max(from, c.t);
      if (end > start) area += c.alloc * (end - start);
    }
    return { mean: area / (to - from) / (this.totalMilli || 1), peak: peak / (this.totalMilli || 1) };
  }

  private result(wallMs: number, first: number): SimResult {
    const gangs = this.states.map((s) => s.out);
    const placed = gangs.filter((g) => g.state === 'placed');
    const waits = placed.map((g) => g.wait!);
    const windowEnd = Math.max(this.states[this.states.length - 1]?.job.arrival ?? first, Number.isFinite(this.lastPlacement) ? this.lastPlacement : first);
    const alloc = this.allocationStats(first, windowEnd);
    const frags = this.timeline.filter((p) => p.t <= windowEnd && p.fragmentation !== undefined).map((p) => p.fragmentation!);
    const judged = placed.filter((g) => g.withinLowest !== undefined);
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
    const within = judged.filter((g) => g.withinLowest).length;
    const name = typeof this.options.profile === 'object' ? this.options.profile.name : (this.options.profile ?? this.framework.profile.name);
    return {
      cluster: { name: this.options.cluster.name, nodes: this.cache.nodes.size, gpus: this.totalMilli / 1000 },
      policy: name,
      summary: {
        arrived: gangs.length,
        placed: placed.length,
        failed: gangs.filter((g) => g.state === 'failed').length,
        pending: gangs.filter((g) => g.state === 'pending').length,
        membersPlaced: placed.reduce((s, g) => s + g.members, 0),
        waitMeanS: mean(waits),
        waitP99S: percentile(waits, 0.99),
        allocationMean: alloc.mean,
        allocationPeak: alloc.peak,
        fragmentationMean: mean(frags),
        topology: {
          judged: judged.length,
          withinLowest: within,
          withinLowestShare: judged.length ? within / judged.length : 0,
          meanLeaves: mean(judged.map((g) => g.leaves!)),
          meanNodes: mean(judged.map((g) => g.nodes!)),
          meanLevelsAboveNode: mean(judged.map((g) => levelsAboveNode(g.level!))),
        },
        simulatedS: this.now - first,
      },
      gangs,
      timeline: this.timeline,
      wallMs,
      scheduleMs: this.scheduleMs,
      attempts: this.attempts,
    };
  }
}

/** Runs one simulation. */
export function simulate(options: SimOptions): SimResult {
  return new Simulator(options).run();
}
