// The gang scheduling cycle. For one gang: pre-filter, then search the topology from the
// lowest level up (node, leaf, spine, fabric) for the fullest domain that can hold every
// member; inside it place members largest first, each on the best-scoring node and devices
// (filter → allocate → score), reserving as it goes; permit the whole; or roll back and
// explain why not. Hosts (control plane, simulator, benchmarks) bind the result.
import type { TopologyLevel } from '../../api/schema.ts';
import type { ClusterCache, DomainState, NodeState } from '../cache/cluster.ts';
import { deviceIsWholeFree } from '../cache/cluster.ts';
import {
  Code,
  type AllocatePlugin,
  type CycleContext,
  type DeviceChoice,
  type FilterPlugin,
  type GangPlacement,
  type GangRequest,
  type MemberPlacement,
  type MemberRequest,
  type PermitPlugin,
  type PluginStatus,
  type PreFilterPlugin,
  type QueueSortPlugin,
  type ReservePlugin,
  type ScorePlugin,
} from './types.ts';

export interface WeightedScore {
  plugin: ScorePlugin;
  weight: number;
}

export interface Profile {
  name: string;
  queueSort: QueueSortPlugin;
  preFilter: PreFilterPlugin[];
  filter: FilterPlugin[];
  allocate: AllocatePlugin;
  score: WeightedScore[];
  reserve: ReservePlugin[];
  permit: PermitPlugin[];
  /** Feasible nodes scored per member when candidates come in best-fit order (whole GPUs). */
  feasibleNodesToScore: number;
  /** Candidate domains tried per level before moving up. */
  domainsToTry: number;
  /**
   * false: a topology-blind baseline (kube-scheduler's behaviour). No lowest-domain search: a
   * gang goes anywhere inside one domain of its required level (the whole cluster when none),
   * and each member's candidate nodes are visited round-robin from where the last cycle
   * stopped, scoring kube-scheduler's adaptive number of feasible nodes. Default true.
   */
  topologyAware?: boolean;
}

export interface ScheduleResult {
  placement?: GangPlacement;
  status: PluginStatus;
  /** Per-reason node counts of the last failed member, kube-scheduler style. */
  diagnosis?: Map<string, number>;
}

const LEVEL_ORDER: TopologyLevel[] = ['nvlink-island', 'numa', 'node', 'leaf', 'spine', 'fabric'];
const IN_NODE: ReadonlySet<TopologyLevel> = new Set(['nvlink-island', 'numa', 'node']);
const rank = (l: TopologyLevel) => LEVEL_ORDER.indexOf(l);

interface Scope {
  /** Every node in scope (flat scans) */
  nodes: () => Iterable<NodeState>;
  /** Leaves in scope, for best-fit iteration of whole-GPU members. */
  leaves: string[];
  domain: string;
  level: TopologyLevel;
  /** All members must share one NVLink island / NUMA node. */
  inNode?: 'nvlink-island' | 'numa';
}

export class Framework {
  /** Topology-blind profiles: where the next round-robin visit of candidate nodes starts (kube's nextStartNodeIndex). */
  private nextStartNode = 0;
  private readonly scopeNodes = new WeakMap<Scope, NodeState[]>();

  constructor(
    readonly cache: ClusterCache,
    readonly profile: Profile,
  ) {}

  /** Orders pending gangs as the profile's queue sort says. */
  sort(gangs: GangRequest[]): GangRequest[] {
    return [...gangs].sort((a, b) => (this.profile.queueSort.less(a, b) ? -1 : this.profile.queueSort.less(b, a) ? 1 : 0));
  }

  /** Finds and reserves a placement for the whole gang, or explains why there is none. */
  schedule(gang: GangRequest): ScheduleResult {
    const ctx: CycleContext = { cache: this.cache, gang, placed: [], state: new Map() };
    for (const p of this.profile.preFilter) {
      const st = p.preFilter(ctx);
      if (st.code !== Code.Success) return { status: { ...st, plugin: st.plugin ?? p.name } };
    }
    const members = [...gang.members].sort(bySizeDesc);
    const required = gang.requiredLevel ?? 'fabric';
    let lastFailure: ScheduleResult | undefined;
    for (const scope of this.scopes(gang, members, required)) {
      const attempt = this.tryScope(ctx, members, scope);
      if (attempt.placement) return attempt;
      lastFailure = attempt;
    }
    return lastFailure ?? { status: { code: Code.Unschedulable, reason: this.explainNoDomain(gang, members, required) } };
  }

  /** Gives back a gang's reservation (failed bind, deletion). */
  release(gangId: string): void {
    this.cache.release(gangId);
  }

  // ---- topology search -------------------------------------------------------------------

  /** Candidate scopes, lowest level first, fullest fitting domain first within a level. */
  private *scopes(gang: GangRequest, members: MemberRequest[], required: TopologyLevel): Generator<Scope> {
    const wholeNeed = members.reduce((s, m) => s + m.gpus, 0);
    const inNode = required === 'nvlink-island' || required === 'numa' ? required : undefined;
    const roots = this.cache.roots();
    if (this.profile.topologyAware === false) {
      yield* this.blindScopes(wholeNeed, required, inNode, roots);
      return;
    }
    // One member: every node of the cluster is a candidate; the score plugins choose.
    if (members.length === 1) {
      yield { nodes: () => this.cache.nodes.values(), leaves: roots.flatMap((d) => d.leaves), domain: roots[0]?.name ?? 'cluster', level: 'node', inNode };
      return;
    }
    const home = this.checkpointScope(members, wholeNeed, required, inNode);
    if (home) yield home;
    const maxPerNode = this.maxDevicesPerNode();
    for (const level of ['node', 'leaf', 'spine', 'fabric'] as TopologyLevel[]) {
      if (level !== 'node' && rank(level) > rank(required)) break;
      if (level === 'node') {
        if (wholeNeed > maxPerNode) {
          if (IN_NODE.has(required)) return;
          continue;
        }
        let tried = 0;
        const cls = members.every((m) => m.acceleratorClass === members[0]!.acceleratorClass) ? members[0]!.acceleratorClass : undefined;
        for (const node of this.nodesFitting(wholeNeed)) {
          // A node whose free GPUs are of another class cannot hold the gang: don't spend a try on it.
          if (cls && node.devices.filter((d) => d.className === cls && deviceIsWholeFree(d)).length < wholeNeed) continue;
          yield { nodes: () => [node], leaves: [node.leaf], domain: node.name, level: 'node', inNode };
          if (++tried >= this.profile.domainsToTry) break;
        }
        if (IN_NODE.has(required)) return;
        continue;
      }
      const fitting = this.cache
        .domainsAt(level)
        .filter((d) => d.freeWhole >= wholeNeed && d.nodes > 0)
        .sort((a, b) => a.freeWhole - b.freeWhole || a.name.localeCompare(b.name))
        .slice(0, this.profile.domainsToTry);
      for (const d of fitting) {
        yield { nodes: () => this.nodesUnder(d), leaves: d.leaves, domain: d.name, level };
      }
    }
  }

  /**
   * A restarting gang tries first where its latest checkpoint is: the one node, or the one
   * leaf, that holds every member's part (CheckpointLocality then puts each member on its own
   * node). Undefined when the parts are spread wider or that domain has no room.
   */
  private checkpointScope(members: MemberRequest[], wholeNeed: number, required: TopologyLevel, inNode: Scope['inNode']): Scope | undefined {
    if (!members.every((m) => m.checkpointNode)) return undefined;
    const nodes = [...new Set(members.map((m) => m.checkpointNode!))].map((n) => this.cache.nodes.get(n));
    if (nodes.some((n) => !n?.ready)) return undefined;
    if (nodes.length === 1) {
      const node = nodes[0]!;
      return node.freeWhole >= wholeNeed ? { nodes: () => [node], leaves: [node.leaf], domain: node.name, level: 'node', inNode } : undefined;
    }
    const leaf = nodes[0]!.leaf;
    if (inNode || rank('leaf') > rank(required) || nodes.some((n) => n!.leaf !== leaf)) return undefined;
    const d = this.cache.domainsAt('leaf').find((x) => x.name === leaf);
    return d && d.freeWhole >= wholeNeed ? { nodes: () => this.nodesUnder(d), leaves: d.leaves, domain: d.name, level: 'leaf' } : undefined;
  }

  /** Topology-blind: the required level's domains that have room, in declaration order; the whole cluster when none is required. */
  private *blindScopes(wholeNeed: number, required: TopologyLevel, inNode: Scope['inNode'], roots: DomainState[]): Generator<Scope> {
    if (IN_NODE.has(required)) {
      let tried = 0;
      for (const node of this.cache.nodes.values()) {
        if (node.freeWhole < wholeNeed) continue;
        yield { nodes: () => [node], leaves: [node.leaf], domain: node.name, level: 'node', inNode };
        if (++tried >= this.profile.domainsToTry) return;
      }
      return;
    }
    if (required === 'fabric') {
      yield { nodes: () => this.cache.nodes.values(), leaves: roots.flatMap((d) => d.leaves), domain: roots.length === 1 ? roots[0]!.name : 'cluster', level: 'fabric' };
      return;
    }
    const fitting = this.cache.domainsAt(required).filter((d) => d.freeWhole >= wholeNeed && d.nodes > 0).slice(0, this.profile.domainsToTry);
    for (const d of fitting) yield { nodes: () => this.nodesUnder(d), leaves: d.leaves, domain: d.name, level: required };
  }

  /** The scope's nodes round-robin from the next start (kube-scheduler's nextStartNodeIndex). */
  private *roundRobin(nodes: NodeState[]): Generator<NodeState> {
    const n = nodes.length;
    const start = n ? this.nextStartNode % n : 0;
    for (let i = 0; i < n; i++) yield nodes[(start + i) % n]!;
  }

  /** kube-scheduler's numFeasibleNodesToFind with the adaptive percentageOfNodesToScore. */
  private feasibleToFind(all: number): number {
    if (all < 100) return all;
    const pct = Math.max(5, 50 - Math.floor(all / 125));
    return Math.max(100, Math.floor((all * pct) / 100));
  }

  private maxDevicesPerNode(): number {
    let max = 0;
    for (const n of this.cache.nodes.values()) if (n.devices.length > max) max = n.devices.length;
    return max;
  }

  private *nodesUnder(d: DomainState): Generator<NodeState> {
    for (const leaf of d.leaves) yield* this.cache.nodesByFreeWhole(leaf, 0);
  }

  /** Nodes with at least `whole` free GPUs, best fit first, across all leaves. */
  private *nodesFitting(whole: number): Generator<NodeState> {
    const leaves = this.cache.domainsAt('leaf').map((d) => d.name);
    for (let free = whole; free <= 64; free++) {
      let any = false;
      for (const leaf of leaves) {
        for (const n of this.cache.nodesByFreeWhole(leaf, free)) {
          if (n.freeWhole === free) {
            any = true;
            yield n;
          }
        }
      }
      if (!any && free > 16) return;
    }
  }

  // ---- member placement --------------------------------------------------------------------

  private tryScope(ctx: CycleContext, members: MemberRequest[], scope: Scope): ScheduleResult {
    const placed: MemberPlacement[] = [];
    ctx.placed = placed;
    ctx.state.set('scope', scope);
    ctx.state.delete('inNodeGroup');
    for (const member of members) {
      const choice = this.selectNode(ctx, member, scope);
      if (!choice.placement) {
        this.rollback(ctx, placed);
        return { status: { code: Code.Unschedulable, reason: choice.reason }, diagnosis: choice.diagnosis };
      }
      this.cache.reserve(ctx.gang.id, choice.placement);
      for (const r of this.profile.reserve) r.reserve(ctx, choice.placement);
      placed.push(choice.placement);
      if (scope.inNode && !ctx.state.has('inNodeGroup') && choice.placement.devices.length) {
        const node = this.cache.nodes.get(choice.placement.node)!;
        ctx.state.set('inNodeGroup', groupOf(node, { devices: choice.placement.devices }, scope.inNode));
      }
    }
    const placement: GangPlacement = { gang: ctx.gang, members: placed, domain: this.lowestCommonDomain(placed), level: scope.level };
    placement.level = this.levelOf(placement.domain);
    for (const p of this.profile.permit) {
      const st = p.permit(ctx, placement);
      if (st.code !== Code.Success) {
        this.rollback(ctx, placed);
        return { status: { ...st, plugin: st.plugin ?? p.name } };
      }
    }
    return { placement, status: { code: Code.Success } };
  }

  private rollback(ctx: CycleContext, placed: MemberPlacement[]): void {
    for (const p of [...placed].reverse()) {
      for (const r of this.profile.reserve) r.unreserve(ctx, p);
      this.cache.unreserve(ctx.gang.id, p);
    }
    placed.length = 0;
  }

  /** Filter → allocate → score over the scope's candidate nodes; the best wins. */
  private selectNode(ctx: CycleContext, member: MemberRequest, scope: Scope): { placement?: MemberPlacement; reason?: string; diagnosis?: Map<string, number> } {
    const diagnosis = new Map<string, number>();
    let best: { node: NodeState; choice: DeviceChoice; score: number } | undefined;
    let feasible = 0;
    const blind = this.profile.topologyAware === false;
    const bestFitOrder = !blind && member.gpus > 0 && !member.migProfile;
    let scopeNodes: NodeState[] = [];
    if (blind) {
      scopeNodes = this.scopeNodes.get(scope) ?? [...scope.nodes()];
      this.scopeNodes.set(scope, scopeNodes);
    }
    const candidates = blind ? this.roundRobin(scopeNodes) : bestFitOrder ? this.wholeGpuCandidates(member, scope) : scope.nodes();
    const enough = blind ? this.feasibleToFind(scopeNodes.length) : this.profile.feasibleNodesToScore;
    let processed = 0;
    for (const node of candidates) {
      processed++;
      let rejected: string | undefined;
      for (const f of this.profile.filter) {
        const st = f.filter(ctx, member, node);
        if (st.code !== Code.Success) {
          rejected = st.reason ?? f.name;
          break;
        }
      }
      if (rejected) {
        diagnosis.set(rejected, (diagnosis.get(rejected) ?? 0) + 1);
        continue;
      }
      let choices = this.profile.allocate.choices(ctx, member, node);
      if (scope.inNode) {
        const group = ctx.state.get('inNodeGroup') as number | undefined;
        choices = choices.filter((c) => sameGroup(node, c, scope.inNode!, group));
      }
      if (choices.length === 0) {
        const why = member.migProfile ? `no free ${member.migProfile} MIG instance` : member.gpus > 0 ? 'not enough free GPUs of the requested kind' : 'no GPU with the requested free share';
        diagnosis.set(why, (diagnosis.get(why) ?? 0) + 1);
        continue;
      }
      feasible++;
      for (const choice of choices) {
        let score = 0;
        for (const { plugin, weight } of this.profile.score) score += weight * plugin.score(ctx, member, node, choice);
        if (!best || score > best.score) best = { node, choice, score };
      }
      if ((bestFitOrder || blind) && feasible >= enough) break;
    }
    if (blind) this.nextStartNode += processed;
    if (!best) {
      const total = [...diagnosis.values()].reduce((a, b) => a + b, 0);
      const parts = [...diagnosis.entries()].sort((a, b) => b[1] - a[1]).map(([why, n]) => `${n} ${why}`);
      return { reason: `0/${total} nodes in ${scope.domain} can run member ${member.id}: ${parts.join(', ') || 'no nodes'}`, diagnosis };
    }
    return {
      placement: {
        member,
        node: best.node.name,
        devices: best.choice.devices,
        cpuMilli: member.cpuMilli,
        memoryBytes: member.memoryBytes,
        reason: best.choice.note,
      },
    };
  }

  /** Nodes with enough whole GPUs in the scope's leaves, fullest leaf first, best-fit nodes first. */
  private *wholeGpuCandidates(member: MemberRequest, scope: Scope): Generator<NodeState> {
    if (scope.leaves.length === 0 || scope.level === 'node') {
      yield* scope.nodes();
      return;
    }
    const leaves = scope.leaves
      .map((l) => this.cache.domains.get(l)!)
      .filter((d) => d && d.freeWhole >= member.gpus)
      .sort((a, b) => a.freeWhole - b.freeWhole || a.name.localeCompare(b.name));
    for (const leaf of leaves) yield* this.cache.nodesByFreeWhole(leaf.name, member.gpus);
  }

  private lowestCommonDomain(placed: MemberPlacement[]): string {
    const nodes = new Set(placed.map((p) => p.node));
    if (nodes.size === 1) return [...nodes][0]!;
    const paths = [...nodes].map((n) => this.cache.nodes.get(n)!.path);
    let common = '';
    for (let i = 0; ; i++) {
      const name = paths[0]![i];
      if (!name || paths.some((p) => p[i] !== name)) return common || name || '';
      common = name;
    }
  }

  private levelOf(domain: string): TopologyLevel {
    return this.cache.nodes.has(domain) ? 'node' : (this.cache.domains.get(domain)?.level ?? 'fabric');
  }

  /** Why no domain at the required level can hold the gang: the emptiest one's free GPUs. */
  private explainNoDomain(gang: GangRequest, members: MemberRequest[], required: TopologyLevel): string {
    const whole = members.reduce((s, m) => s + m.gpus, 0);
    const cls = members.find((m) => m.acceleratorClass)?.acceleratorClass;
    const what = `${whole}×${cls ?? 'GPU'}`;
    const level = IN_NODE.has(required) ? 'leaf' : required;
    const domains = this.cache.domainsAt(level);
    const emptiest = domains.sort((a, b) => freeOf(b, cls) - freeOf(a, cls))[0];
    if (!emptiest) return `needs ${what}; the cluster has no ${level} domains`;
    return `needs ${what} within one ${required}; the emptiest ${level}, ${emptiest.name}, has ${freeOf(emptiest, cls)} free`;
  }
}

function freeOf(d: DomainState, cls?: string): number {
  return cls ? (d.freeWholeByClass.get(cls) ?? 0) : d.freeWhole;
}

function bySizeDesc(a: MemberRequest, b: MemberRequest): number {
  return b.gpus - a.gpus || b.gpuMilli - a.gpuMilli || b.vramBytes - a.vramBytes || b.cpuMilli - a.cpuMilli || a.id.localeCompare(b.id);
}

/** The NVLink island (or NUMA node) of a choice's devices, or undefined when they span several. */
function groupOf(node: NodeState, choice: DeviceChoice, level: 'nvlink-island' | 'numa'): number | undefined {
  const groups = new Set(
    choice.devices.map((g) => {
      const d = node.devices.find((x) => x.index === g.index)!;
      return level === 'numa' ? d.numa : d.island;
    }),
  );
  return groups.size === 1 ? [...groups][0] : undefined;
}

function sameGroup(node: NodeState, choice: DeviceChoice, level: 'nvlink-island' | 'numa', required: number | undefined): boolean {
  if (choice.devices.length === 0) return true;
  const g = groupOf(node, choice, level);
  return g !== undefined && (required === undefined || g === required);
}
