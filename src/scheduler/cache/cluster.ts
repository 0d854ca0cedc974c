// The scheduler's in-memory view of free capacity, per device and per topology domain.
// Placement reads it, reserve/release change it, and aggregates per domain (free whole
// GPUs, by accelerator class) plus per-leaf buckets of nodes by free GPUs are kept
// current incrementally, so a large gang never scans every node per member.
import type { TopologyLevel } from '../../api/schema.ts';
import type { DeviceGrant, MemberPlacement } from '../framework/types.ts';

export interface MigInstance {
  profile: string;
  instance: number;
  uuid?: string;
  memoryBytes: number;
  usedBy?: string;
}

export interface DeviceState {
  index: number;
  uuid: string;
  className: string;
  /** DRA-style attributes for capability selectors (productName, architecture, memory, fp8, …). */
  attrs: Record<string, string>;
  /** Memory that can be handed out: total minus what the driver reserves. */
  memoryBytes: number;
  memoryFree: number;
  /** Compute share left, in thousandths of the device. */
  milliFree: number;
  numa: number;
  island: number;
  mig?: MigInstance[];
  /** Model weights resident on the device (warm state). */
  models: Set<string>;
  /** VRAMPool (namespace/name) bound to the device, if any. */
  pool?: string;
  /** What the pool holds of the device (its grant), while `pool` is set. */
  poolGrant?: DeviceGrant;
  /** Members of the pool using the device (grants with `pool` set count here, not in capacity). */
  poolUsers?: number;
}

export interface NodeState {
  name: string;
  labels: Record<string, string>;
  ready: boolean;
  unschedulable: boolean;
  /** fabric → spine → leaf names (empty for a flat cluster). */
  path: string[];
  leaf: string;
  cpuMilli: number;
  cpuFree: number;
  memoryBytes: number;
  memoryFree: number;
  devices: DeviceState[];
  /** Devices wholly free (no share, no MIG instance in use). */
  freeWhole: number;
  /** Index of this node in the cache's node array (stable while the node exists). */
  slot: number;
}

export interface DomainState {
  name: string;
  level: TopologyLevel;
  parent?: string;
  children: string[];
  /** Leaves beneath (itself for a leaf). */
  leaves: string[];
  gpus: number;
  freeWhole: number;
  freeWholeByClass: Map<string, number>;
  nodes: number;
}

export interface NodeInput {
  name: string;
  labels?: Record<string, string>;
  ready?: boolean;
  unschedulable?: boolean;
  leaf?: string;
  cpuMilli: number;
  memoryBytes: number;
  devices: {
    index: number;
    uuid: string;
    className: string;
    attrs?: Record<string, string>;
    memoryBytes: number;
    reservedBytes?: number;
    numa?: number;
    island?: number;
    mig?: { profile: string; instance: number; uuid?: string; memoryBytes: number }[];
  }[];
}

export interface DomainInput {
  name: string;
  level: TopologyLevel;
  parent?: string;
}

/** Cache holding ids of VRAMPools: `vrampool:<namespace>/<name>`. */
export const POOL_HOLDER_PREFIX = 'vrampool:';
export const poolHolder = (pool: string): string => `${POOL_HOLDER_PREFIX}${pool}`;

/** The synthetic root for fleets without declared topology (the openb traces). */
export const FLAT_FABRIC = 'cluster';

const isWholeFree = (d: DeviceState) => !d.mig && d.milliFree === 1000 && d.memoryFree === d.memoryBytes && !d.pool;

export class ClusterCache {
  readonly nodes = new Map<string, NodeState>();
  readonly domains = new Map<string, DomainState>();
  /** leaf -> buckets of nodes by freeWhole (index = free whole GPUs). */
  private readonly buckets = new Map<string, Set<NodeState>[]>();
  /** gang id -> its member placements, for release. */
  private readonly holdings = new Map<string, MemberPlacement[]>();
  /** VRAMPool (namespace/name) -> devices tagged with it. */
  readonly pools = new Map<string, number>();
  private slots = 0;

  // ---- topology ------------------------------------------------------------------------

  setDomain(d: DomainInput): void {
    const existing = this.domains.get(d.name);
    if (existing) {
      if (existing.parent !== d.parent) this.detach(existing);
      existing.level = d.level;
      existing.parent = d.parent;
      this.attach(existing);
      return;
    }
    const state: DomainState = { name: d.name, level: d.level, parent: d.parent, children: [], leaves: d.level === 'leaf' ? [d.name] : [], gpus: 0, freeWhole: 0, freeWholeByClass: new Map(), nodes: 0 };
    this.domains.set(d.name, state);
    this.attach(state);
  }

  private attach(d: DomainState): void {
    if (!d.parent) return;
    if (!this.domains.has(d.parent)) this.setDomain({ name: d.parent, level: parentLevel(d.level) });
    const p = this.domains.get(d.parent)!;
    if (!p.children.includes(d.name)) p.children.push(d.name);
    this.recomputeLeaves();
  }

  private detach(d: DomainState): void {
    const p = d.parent ? this.domains.get(d.parent) : undefined;
    if (p) p.children = p.children.filter((c) => c !== d.name);
  }

  private recomputeLeaves(): void {
    const collect = (d: DomainState): string[] => (d.level === 'leaf' ? [d.name] : d.children.flatMap((c) => collect(this.domains.get(c)!)));
    for (const d of this.domains.values()) if (d.level !== 'leaf') d.leaves = collect(d);
  }

  /** Domains from the root down to `name`. */
  pathOf(name: string): string[] {
    const out: string[] = [];
    for (let d = this.domains.get(name); d; d = d.parent ? this.domains.get(d.parent) : undefined) out.unshift(d.name);
    return out;
  }

  /** Top-level domains (no parent): the fabrics, or a leaf declared on its own. */
  roots(): DomainState[] {
    return [...this.domains.values()].filter((d) => !d.parent);
  }

  domainsAt(level: TopologyLevel): DomainState[] {
    return [...this.domains.values()].filter((d) => d.level === level);
  }

  // ---- nodes ---------------------------------------------------------------------------

  upsertNode(input: NodeInput): NodeState {
    const previous = this.nodes.get(input.name);
    if (previous) this.removeNode(input.name, true);
    let leaf = input.leaf;
    if (!leaf) {
      if (!this.domains.has(FLAT_FABRIC)) this.setDomain({ name: FLAT_FABRIC, level: 'fabric' });
      if (!this.domains.has(`${FLAT_FABRIC}-leaf`)) this.setDomain({ name: `${FLAT_FABRIC}-leaf`, level: 'leaf', parent: FLAT_FABRIC });
      leaf = `${FLAT_FABRIC}-leaf`;
    } else if (!this.domains.has(leaf)) {
      this.setDomain({ name: leaf, level: 'leaf' });
    }
    const node: NodeState = {
      name: input.name,
      labels: input.labels ?? {},
      ready: input.ready ?? true,
      unschedulable: input.unschedulable ?? false,
      path: this.pathOf(leaf),
      leaf,
      cpuMilli: input.cpuMilli,
      cpuFree: input.cpuMilli,
      memoryBytes: input.memoryBytes,
      memoryFree: input.memoryBytes,
      devices: input.devices.map((d) => {
        const memory = Math.max(0, d.memoryBytes - (d.reservedBytes ?? 0));
        return {
          index: d.index,
          uuid: d.uuid,
          className: d.className,
          attrs: d.attrs ?? {},
          memoryBytes: memory,
          memoryFree: memory,
          milliFree: 1000,
          numa: d.numa ?? 0,
          island: d.island ?? d.index,
          mig: d.mig?.length ? d.mig.map((m) => ({ ...m })) : undefined,
          models: new Set<string>(),
        };
      }),
      freeWhole: 0,
      slot: previous?.slot ?? this.slots++,
    };
    // Carry over what the node held and the warm state of its devices.
    if (previous) {
      for (const holding of this.holdings.values()) for (const p of holding) if (p.node === node.name) this.apply(node, p, +1);
      for (const d of previous.devices) {
        const now = node.devices.find((x) => x.uuid === d.uuid);
        if (now) {
          now.models = d.models;
          now.pool = d.pool;
          now.poolGrant = d.poolGrant;
        }
      }
    }
    node.freeWhole = node.devices.filter(isWholeFree).length;
    this.nodes.set(node.name, node);
    this.index(node, +1);
    return node;
  }

  removeNode(name: string, keepHoldings = false): void {
    const node = this.nodes.get(name);
    if (!node) return;
    this.index(node, -1);
    this.nodes.delete(name);
    if (!keepHoldings) {
      for (const d of node.devices) {
        if (!d.pool) continue;
        const left = (this.pools.get(d.pool) ?? 1) - 1;
        if (left > 0) this.pools.set(d.pool, left);
        else this.pools.delete(d.pool);
      }
      for (const [gang, holding] of this.holdings) {
        const left = holding.filter((p) => p.node !== name);
        if (left.length) this.holdings.set(gang, left);
        else this.holdings.delete(gang);
      }
    }
  }

  /** Adds (+1) or removes (-1) a node's free capacity from its domains and buckets. */
  private index(node: NodeState, sign: 1 | -1): void {
    for (const name of node.path) {
      const d = this.domains.get(name);
      if (!d) continue;
      d.nodes += sign;
      d.gpus += sign * node.devices.length;
      d.freeWhole += sign * node.freeWhole;
      for (const dev of node.devices) {
        if (isWholeFree(dev)) d.freeWholeByClass.set(dev.className, (d.freeWholeByClass.get(dev.className) ?? 0) + sign);
      }
    }
    let buckets = this.buckets.get(node.leaf);
    if (!buckets) {
      buckets = [];
      this.buckets.set(node.leaf, buckets);
    }
    while (buckets.length <= node.devices.length) buckets.push(new Set());
    if (sign > 0) buckets[node.freeWhole]!.add(node);
    else buckets[node.freeWhole]!.delete(node);
  }

  /**
   * Nodes of a leaf with at least `minFree` wholly free GPUs, fewest free first (best fit).
   * With minFree 0 every node of the leaf, fullest first.
   */
  *nodesByFreeWhole(leaf: string, minFree: number): Generator<NodeState> {
    const buckets = this.buckets.get(leaf);
    if (!buckets) return;
    for (let free = minFree; free < buckets.length; free++) yield* buckets[free]!;
  }

  // ---- holding capacity -----------------------------------------------------------------

  /** Takes the member's devices, CPU and memory (a reservation). */
  reserve(gangId: string, placement: MemberPlacement): void {
    const node = this.nodes.get(placement.node);
    if (!node) throw new Error(`reserve on unknown node ${placement.node}`);
    this.change(node, () => this.apply(node, placement, +1));
    const holding = this.holdings.get(gangId) ?? [];
    holding.push(placement);
    this.holdings.set(gangId, holding);
  }

  /** Gives one member's capacity back. */
  unreserve(gangId: string, placement: MemberPlacement): void {
    const holding = this.holdings.get(gangId);
    const i = holding?.indexOf(placement) ?? -1;
    if (i < 0) return;
    holding!.splice(i, 1);
    if (!holding!.length) this.holdings.delete(gangId);
    const node = this.nodes.get(placement.node);
    if (node) this.change(node, () => this.apply(node, placement, -1));
  }

  /** Gives back everything a gang holds (deletion, failure, rollback). */
  release(gangId: string): MemberPlacement[] {
    const holding = [...(this.holdings.get(gangId) ?? [])];
    for (const p of holding.reverse()) this.unreserve(gangId, p);
    return holding;
  }

  holding(gangId: string): readonly MemberPlacement[] {
    return this.holdings.get(gangId) ?? [];
  }

  gangIds(): string[] {
    return [...this.holdings.keys()];
  }

  /** Runs a change to a node's devices with its domain aggregates and bucket kept exact. */
  private change(node: NodeState, mutate: () => void): void {
    this.index(node, -1);
    mutate();
    node.freeWhole = node.devices.filter(isWholeFree).length;
    this.index(node, +1);
  }

  private apply(node: NodeState, p: MemberPlacement, sign: 1 | -1): void {
    node.cpuFree -= sign * p.cpuMilli;
    node.memoryFree -= sign * p.memoryBytes;
    for (const g of p.devices) {
      const dev = node.devices.find((d) => d.index === g.index);
      if (!dev) continue;
      // A member using its VRAMPool's device: the pool holds the capacity; count the user.
      if (g.pool !== undefined) {
        dev.poolUsers = Math.max(0, (dev.poolUsers ?? 0) + sign);
        continue;
      }
      if (g.migInstance !== undefined && dev.mig) {
        const inst = dev.mig.find((m) => m.instance === g.migInstance);
        if (inst) inst.usedBy = sign > 0 ? p.member.id : undefined;
        continue;
      }
      dev.milliFree -= sign * g.milli;
      dev.memoryFree -= sign * g.memoryBytes;
    }
  }

  /**
   * Tags a device as bound to a VRAMPool (with what the pool holds of it), or untags it
   * (pool undefined). The pool's own reservation is a holding like any other.
   */
  setPool(nodeName: string, deviceIndex: number, pool: string | undefined, grant?: DeviceGrant): void {
    const node = this.nodes.get(nodeName);
    const dev = node?.devices.find((d) => d.index === deviceIndex);
    if (!node || !dev || dev.pool === pool) return;
    this.change(node, () => {
      if (dev.pool) {
        const left = (this.pools.get(dev.pool) ?? 1) - 1;
        if (left > 0) this.pools.set(dev.pool, left);
        else this.pools.delete(dev.pool);
      }
      dev.pool = pool;
      dev.poolGrant = pool ? grant : undefined;
      if (pool) this.pools.set(pool, (this.pools.get(pool) ?? 0) + 1);
    });
  }

  /** Marks weights as resident on devices (warm state survives the workload). */
  markResident(node: string, deviceIndex: number, model: string): void {
    this.nodes.get(node)?.devices.find((d) => d.index === deviceIndex)?.models.add(model);
  }

  /** Totals, for metrics and the simulator. */
  totals(): { gpus: number; freeWhole: number; allocatedMilli: number; byClass: Map<string, { gpus: number; free: number }> } {
    let gpus = 0;
    let freeWhole = 0;
    let allocatedMilli = 0;
    const byClass = new Map<string, { gpus: number; free: number }>();
    for (const n of this.nodes.values()) {
      for (const d of n.devices) {
        gpus++;
        const whole = isWholeFree(d);
        if (whole) freeWhole++;
        allocatedMilli += d.mig ? d.mig.filter((m) => m.usedBy).length * Math.round(1000 / 7) : 1000 - d.milliFree;
        const c = byClass.get(d.className) ?? { gpus: 0, free: 0 };
        c.gpus++;
        if (whole) c.free++;
        byClass.set(d.className, c);
      }
    }
    return { gpus, freeWhole, allocatedMilli, byClass };
  }
}

export const deviceIsWholeFree = isWholeFree;

function parentLevel(level: TopologyLevel): TopologyLevel {
  return level === 'leaf' ? 'spine' : 'fabric';
}

export type { DeviceGrant };
