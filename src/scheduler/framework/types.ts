// The scheduling framework's vocabulary: what a gang asks for, what a placement is, and the
// extension points plugins implement. The unit is the gang, not the pod: a placement is
// accepted whole or not at all.
import type { TopologyLevel } from '../../api/schema.ts';
import type { ClusterCache, NodeState, DeviceState } from '../cache/cluster.ts';

/** What one member needs from one node. All amounts in base units (bytes, milli). */
export interface MemberRequest {
  /** `<role>-<index>`, unique within the gang. */
  id: string;
  role: string;
  index: number;
  /** Whole GPUs (exclusive). */
  gpus: number;
  /** A share of one GPU's compute, 1..999 (fractional members; 0 when none). */
  gpuMilli: number;
  /** GPU memory on one shared device, or per device with gpus > 0 (bytes; 0 when none). */
  vramBytes: number;
  /** A MIG profile such as 1g.10gb. */
  migProfile?: string;
  /** The device must belong to this AcceleratorClass. */
  acceleratorClass?: string;
  /** Or satisfy these capability expressions (device attributes). */
  capabilities?: { key: string; operator: string; values?: string[] }[];
  /** Allowed accelerator classes (any of); empty means any. From traces' GPU model lists. */
  allowedClasses?: string[];
  cpuMilli: number;
  memoryBytes: number;
  nodeSelector?: Record<string, string>;
  /** Model weights the member loads; devices holding them score highest. */
  model?: string;
  /** VRAMPool (namespace/name) whose devices the member should use. */
  vramPool?: string;
  /**
   * Devices the member takes from its bound VRAMPool (its `gpus`, moved here so that the
   * whole-GPU search, which looks at free devices only, does not rule the pool's out).
   */
  poolDevices?: number;
  /** The node whose local disk holds this member's part of the gang's latest checkpoint. */
  checkpointNode?: string;
}

export interface GangRequest {
  /** `<namespace>/<name>` (or a trace id in the simulator). */
  id: string;
  namespace: string;
  name: string;
  queue: string;
  priority: number;
  /** Arrival order: creation time in ms (or the simulated clock). */
  createdAt: number;
  members: MemberRequest[];
  /** Members that must be placed together (defaults to all). */
  minMember: number;
  requiredLevel?: TopologyLevel;
  preferredLevel?: TopologyLevel;
}

/** One device given to a member. */
export interface DeviceGrant {
  index: number;
  uuid: string;
  /** The whole device, exclusively. */
  whole: boolean;
  /** Compute share held (1000 for a whole device). */
  milli: number;
  /** Memory held in bytes (the allocatable memory for a whole device). */
  memoryBytes: number;
  migProfile?: string;
  migInstance?: number;
  /**
   * Set when the device is used through the member's VRAMPool (namespace/name): the pool
   * already holds the capacity, so the grant takes none of it.
   */
  pool?: string;
}

export interface MemberPlacement {
  member: MemberRequest;
  node: string;
  devices: DeviceGrant[];
  cpuMilli: number;
  memoryBytes: number;
  /** Why here, for people: warm weights, NVLink island, best fit. */
  reason?: string;
}

export interface GangPlacement {
  gang: GangRequest;
  members: MemberPlacement[];
  /** The lowest domain holding every member, and its level. */
  domain: string;
  level: TopologyLevel;
}

/** A candidate device choice on one node for one member, before scoring. */
export interface DeviceChoice {
  devices: DeviceGrant[];
  /** Set by the allocator: e.g. "NVLink island 0", "shares GPU 3". */
  note?: string;
}

export const Code = {
  Success: 'Success',
  Unschedulable: 'Unschedulable',
  UnschedulableAndUnresolvable: 'UnschedulableAndUnresolvable',
  Error: 'Error',
} as const;
export type Code = (typeof Code)[keyof typeof Code];

export interface PluginStatus {
  code: Code;
  /** A sentence a person can act on. */
  reason?: string;
  plugin?: string;
}

export const ok = (): PluginStatus => ({ code: Code.Success });
export const unschedulable = (reason: string, unresolvable = false): PluginStatus => ({
  code: unresolvable ? Code.UnschedulableAndUnresolvable : Code.Unschedulable,
  reason,
});

/** What plugins see of the cycle. */
export interface CycleContext {
  cache: ClusterCache;
  gang: GangRequest;
  /** Members placed so far in this attempt (reserved in the cache). */
  placed: MemberPlacement[];
  /** Per-cycle scratch space for plugins (PreFilter results, precomputed tables). */
  state: Map<string, unknown>;
}

// ---- extension points ----------------------------------------------------------------

export interface Plugin {
  readonly name: string;
}

/** Orders the pending gangs; exactly one per profile. */
export interface QueueSortPlugin extends Plugin {
  less(a: GangRequest, b: GangRequest): boolean;
}

/** Gang-level checks before any node is looked at (quota, total capacity, pool bound). */
export interface PreFilterPlugin extends Plugin {
  preFilter(ctx: CycleContext): PluginStatus;
}

/** Can this member run on this node at all? */
export interface FilterPlugin extends Plugin {
  filter(ctx: CycleContext, member: MemberRequest, node: NodeState): PluginStatus;
}

/** Which devices of a node would this member get? One plugin per profile. */
export interface AllocatePlugin extends Plugin {
  /** Every reasonable device choice for the member on the node (empty: does not fit). */
  choices(ctx: CycleContext, member: MemberRequest, node: NodeState): DeviceChoice[];
}

/** How good is this node (and device choice) for this member? 0..100, higher is better. */
export interface ScorePlugin extends Plugin {
  score(ctx: CycleContext, member: MemberRequest, node: NodeState, choice: DeviceChoice): number;
}

/** Called after a member is reserved in the cache, and to undo it. */
export interface ReservePlugin extends Plugin {
  reserve(ctx: CycleContext, placement: MemberPlacement): void;
  unreserve(ctx: CycleContext, placement: MemberPlacement): void;
}

/** The whole gang's placement, before it is bound: approve or reject. */
export interface PermitPlugin extends Plugin {
  permit(ctx: CycleContext, placement: GangPlacement): PluginStatus;
}

/** Makes the placement real (a store transaction in the control plane; nothing in the simulator). */
export interface BindPlugin extends Plugin {
  bind(placement: GangPlacement): Promise<PluginStatus>;
}

export const ExtensionPoint = {
  QueueSort: 'queueSort',
  PreFilter: 'preFilter',
  Filter: 'filter',
  Allocate: 'allocate',
  Score: 'score',
  Reserve: 'reserve',
  Permit: 'permit',
  Bind: 'bind',
} as const;
export type ExtensionPoint = (typeof ExtensionPoint)[keyof typeof ExtensionPoint];

export type AnyPlugin = Partial<
  QueueSortPlugin & PreFilterPlugin & FilterPlugin & AllocatePlugin & ScorePlugin & ReservePlugin & PermitPlugin & BindPlugin
> &
  Plugin;

export type { NodeState, DeviceState };
