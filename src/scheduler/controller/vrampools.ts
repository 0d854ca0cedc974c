// VRAMPools in the scheduler: a claim on GPU memory that outlives its workloads.
//
// A pending pool is placed through the same Framework as a gang: a pseudo-gang of one
// member per device (Exclusive: a whole GPU, of at least sizePerDevice; MPS/TimeSlice: a
// share of sizePerDevice and computeMilli; MIG: an instance of the profile), never two on
// one device. Its reservation is held in the cache under `vrampool:<namespace>/<name>`,
// so it survives every workload, and its devices are tagged `pool = <namespace>/<name>`,
// which members naming the pool (template.vramPoolName) use, and only those (see the
// DeviceAllocator). The status says where: phase Bound, boundDevices, residentModels
// (each model of spec.models on each device; the devices are simulated, so "resident"
// means declared loaded by the pool) and condition Bound=True; the models are marked
// resident in the cache, so members naming a model score those devices highest. A pool
// that fits nowhere says why in Bound=False. Deleting the pool gives its devices back.
// After a restart the pool is held again from its status.boundDevices, as Tasks are.
//
// Not yet: retention (ReleaseWhenIdle), resizing a bound pool, loading or checking
// weights. Members still using a pool when it is deleted keep running, but their devices
// count as free from then on.
import type { Logger } from 'pino';
import type { KubeObject } from '../../api/meta.ts';
import { setCondition, type Condition } from '../../api/meta.ts';
import { formatQuantity, NANO_PER_UNIT } from '../../api/quantity.ts';
import { VRAMPool, type VRAMPoolSpec } from '../../api/kinds/vrampool.ts';
import type { ObjectEvent, Registry } from '../../apiserver/registry.ts';
import { timestamp } from '../../apiserver/registry.ts';
import { ApiError } from '../../apiserver/errors.ts';
import type { EventRecorder } from '../../controllers/events.ts';
import { poolHolder, POOL_HOLDER_PREFIX, type ClusterCache, type NodeState } from '../cache/cluster.ts';
import type { Framework } from '../framework/framework.ts';
import type { DeviceGrant, GangPlacement, GangRequest, MemberPlacement, MemberRequest } from '../framework/types.ts';
import { amount } from '../objects.ts';
import { gangKey } from './binding.ts';
import type { QueuedGang, SchedulingQueue } from './queue.ts';

export const CONDITION_BOUND = 'Bound';
const ROLE = 'device';

export interface BoundDevice {
  nodeName: string;
  index: number;
  uuid?: string;
  size?: string;
  migInstance?: number;
}

interface PoolStatusShape {
  phase?: string;
  boundDevices?: BoundDevice[];
  residentModels?: { name: string; digest?: string; nodeName: string; index: number; loadedTime?: string }[];
  conditions?: Condition[];
  observedGeneration?: number;
  [field: string]: unknown;
}

const statusOf = (obj: KubeObject) => (obj.status ?? {}) as PoolStatusShape;
const specOf = (obj: KubeObject) => obj.spec as VRAMPoolSpec;
const isBound = (obj: KubeObject) => statusOf(obj).phase === 'Bound' && (statusOf(obj).boundDevices?.length ?? 0) > 0;

/** The pool as a pseudo-gang to place: one member per device. Throws on a spec it cannot place. */
export function poolRequest(obj: KubeObject): GangRequest {
  const spec = specOf(obj);
  const ns = obj.metadata.namespace ?? 'default';
  const sharing = spec.sharing ?? 'Exclusive';
  const size = amount(spec.sizePerDevice);
  if (sharing === 'MIG' && !spec.migProfile) throw new Error('sharing MIG needs a migProfile');
  if ((sharing === 'MPS' || sharing === 'TimeSlice') && size <= 0 && !spec.computeMilli) throw new Error(`sharing ${sharing} needs sizePerDevice or computeMilli`);
  const members: MemberRequest[] = Array.from({ length: spec.devices ?? 1 }, (_, i) => ({
    id: `${ROLE}-${i}`,
    role: ROLE,
    index: i,
    gpus: sharing === 'Exclusive' ? 1 : 0,
    gpuMilli: sharing === 'MPS' || sharing === 'TimeSlice' ? (spec.computeMilli ?? 0) : 0,
    vramBytes: sharing === 'MIG' ? 0 : size,
    ...(sharing === 'MIG' ? { migProfile: spec.migProfile } : {}),
    ...(spec.acceleratorClassName ? { acceleratorClass: spec.acceleratorClassName } : {}),
    ...(spec.acceleratorSelector?.matchExpressions ? { capabilities: spec.acceleratorSelector.matchExpressions } : {}),
    cpuMilli: 0,
    memoryBytes: 0,
  }));
  return {
    id: poolHolder(`${ns}/${obj.metadata.name}`),
    namespace: ns,
    name: obj.metadata.name,
    queue: 'default',
    priority: 0,
    createdAt: Date.parse(String(obj.metadata.creationTimestamp ?? 0)) || 0,
    members,
    minMember: members.length,
  };
}

const bytesQuantity = (bytes: number) => formatQuantity(BigInt(Math.round(bytes)) * NANO_PER_UNIT, 'BinarySI');

/** What the pool holds of a device, as its status says it (inverse of boundDevice). */
function grantOf(spec: VRAMPoolSpec, d: BoundDevice, node: NodeState): DeviceGrant | undefined {
  const device = node.devices.find((x) => x.index === d.index);
  if (!device) return undefined;
  const sharing = spec.sharing ?? 'Exclusive';
  if (sharing === 'MIG') {
    const inst = device.mig?.find((m) => m.instance === d.migInstance);
    return { index: d.index, uuid: inst?.uuid ?? d.uuid ?? device.uuid, whole: false, milli: 0, memoryBytes: 0, migProfile: spec.migProfile, migInstance: d.migInstance };
  }
  if (sharing === 'Exclusive') return { index: d.index, uuid: device.uuid, whole: true, milli: 1000, memoryBytes: device.memoryBytes };
  return { index: d.index, uuid: device.uuid, whole: false, milli: spec.computeMilli ?? 0, memoryBytes: amount(spec.sizePerDevice) };
}

function boundDevice(g: DeviceGrant, node: NodeState): BoundDevice {
  const device = node.devices.find((x) => x.index === g.index);
  if (g.migInstance !== undefined) {
    const inst = device?.mig?.find((m) => m.instance === g.migInstance);
    return { nodeName: node.name, index: g.index, uuid: g.uuid, ...(inst ? { size: bytesQuantity(inst.memoryBytes) } : {}), migInstance: g.migInstance };
  }
  return { nodeName: node.name, index: g.index, uuid: g.uuid, size: bytesQuantity(g.memoryBytes) };
}

/** A bound pool as the cache holds it; `held` while its devices are reserved and tagged. */
interface HeldPool {
  key: string;
  uid: string;
  spec: VRAMPoolSpec;
  devices: BoundDevice[];
  placements: MemberPlacement[];
  held: boolean;
}

export interface PoolBinderDeps {
  registry: Registry;
  cache: ClusterCache;
  framework: Framework;
  queue: SchedulingQueue;
  events: EventRecorder;
  log: Logger;
  /** A node's free capacity changed (status to publish). */
  markNode(node: string): void;
  /** Best-effort writes the loop does not wait for. */
  inBackground(p: Promise<unknown>): void;
}

/** Binds VRAMPools: their queue entries, their holdings in the cache, their status. */
export class VRAMPoolBinder {
  private readonly pools = new Map<string, HeldPool>();

  constructor(private readonly d: PoolBinderDeps) {}

  /** Keys (namespace/name) of the pools this binder knows: bound or queued. */
  keys(): string[] {
    const queued = this.d.queue.keys().filter((k) => k.startsWith(POOL_HOLDER_PREFIX)).map((k) => k.slice(POOL_HOLDER_PREFIX.length));
    return [...new Set([...this.pools.keys(), ...queued])];
  }

  isBound(pool: string): boolean {
    return this.pools.get(pool)?.held ?? false;
  }

  onPool(e: ObjectEvent): void {
    const key = gangKey(e.object);
    const queueKey = poolHolder(key);
    if (e.type === 'DELETED' || e.object.metadata.deletionTimestamp) {
      this.d.queue.remove(queueKey);
      if (this.release(key)) this.d.queue.moveAllToActive();
      return;
    }
    const have = this.pools.get(key);
    if (have && have.uid !== e.object.metadata.uid) this.release(key); // deleted and created again meanwhile
    if (isBound(e.object)) {
      this.d.queue.remove(queueKey);
      if (!this.pools.has(key)) {
        const held: HeldPool = { key, uid: e.object.metadata.uid ?? '', spec: specOf(e.object), devices: statusOf(e.object).boundDevices!, placements: [], held: false };
        this.pools.set(key, held);
        this.hold(held);
      }
      return;
    }
    if (this.pools.has(key)) return; // bound by this scheduler; its status is on its way
    let request: GangRequest;
    try {
      request = poolRequest(e.object);
    } catch (err) {
      this.d.queue.remove(queueKey);
      this.d.inBackground(this.reportUnbound(e.object, (err as Error).message, 'Invalid'));
      return;
    }
    this.d.queue.upsert(e.object, request);
  }

  /** A node came (back): pools bound to it hold their devices again. */
  onNodeAdded(node: string): void {
    for (const p of this.pools.values()) if (!p.held && p.devices.some((d) => d.nodeName === node)) this.hold(p);
  }

  /** A node went: its holdings went with it in the cache. */
  onNodeRemoved(node: string): void {
    for (const p of this.pools.values()) {
      if (!p.held || !p.devices.some((d) => d.nodeName === node)) continue;
      this.unhold(p);
    }
  }

  /** Reserves and tags a bound pool's devices (all nodes known), marking its models resident. */
  private hold(p: HeldPool): void {
    const nodes = p.devices.map((d) => this.d.cache.nodes.get(d.nodeName));
    if (nodes.some((n) => !n)) return; // held once every node is known
    const holder = poolHolder(p.key);
    p.placements = [];
    for (const [i, d] of p.devices.entries()) {
      const node = nodes[i]!;
      const grant = grantOf(p.spec, d, node);
      if (!grant) continue;
      const placement: MemberPlacement = { member: poolMember(i), node: node.name, devices: [grant], cpuMilli: 0, memoryBytes: 0 };
      this.d.cache.reserve(holder, placement);
      p.placements.push(placement);
    }
    this.tag(p);
    p.held = true;
  }

  private tag(p: HeldPool): void {
    for (const pl of p.placements) {
      for (const g of pl.devices) {
        this.d.cache.setPool(pl.node, g.index, p.key, g);
        for (const m of p.spec.models ?? []) this.d.cache.markResident(pl.node, g.index, m.name);
      }
      this.d.markNode(pl.node);
    }
  }

  private unhold(p: HeldPool): void {
    const holder = poolHolder(p.key);
    // Untag first: a device still held reads as not wholly free either way, so the
    // cache's free-GPU aggregates stay exact.
    for (const pl of p.placements) for (const g of pl.devices) this.d.cache.setPool(pl.node, g.index, undefined);
    for (const pl of p.placements) {
      this.d.cache.unreserve(holder, pl);
      this.d.markNode(pl.node);
    }
    p.placements = [];
    p.held = false;
  }

  /** Gives a pool's devices back; true when it held any. */
  private release(key: string): boolean {
    const p = this.pools.get(key);
    if (!p) return false;
    this.pools.delete(key);
    const held = p.held;
    if (held) this.unhold(p);
    return held;
  }

  /** One attempt at a pending pool: place every device and write status Bound, or say why not. */
  async attempt(entry: QueuedGang): Promise<'scheduled' | 'unschedulable' | 'error'> {
    const pool = entry.object;
    const key = gangKey(pool);
    const result = this.d.framework.schedule(entry.request);
    if (!result.placement) {
      const reason = result.status.reason ?? `cannot be placed (${result.status.plugin ?? result.status.code})`;
      this.d.queue.done(entry.key, 'unschedulable');
      await this.reportUnbound(pool, reason, 'Unschedulable');
      return 'unschedulable';
    }
    const placement = result.placement;
    const held: HeldPool = { key, uid: pool.metadata.uid ?? '', spec: specOf(pool), devices: [], placements: placement.members, held: true };
    held.devices = placement.members.flatMap((m) => m.devices.map((g) => boundDevice(g, this.d.cache.nodes.get(m.node)!)));
    // Registered (and tagged) before the write, since its watch event may come first.
    this.pools.set(key, held);
    this.tag(held);
    try {
      const status = boundStatus(pool, held.devices, placement);
      const written = await this.d.registry.update(VRAMPool, pool.metadata.namespace, pool.metadata.name, { ...pool, status }, { subresource: 'status' });
      this.d.queue.done(entry.key, 'bound');
      this.d.log.info({ pool: key, devices: held.devices.length }, 'VRAMPool bound');
      this.d.inBackground(this.d.events.record(written, 'Normal', 'Bound', `Bound ${describeDevices(held.devices)}`));
      this.d.queue.moveAllToActive(); // members waiting for the pool
      return 'scheduled';
    } catch (err) {
      if (this.pools.get(key) === held) this.release(key);
      else for (const pl of placement.members) this.d.cache.unreserve(entry.request.id, pl);
      this.d.queue.done(entry.key, 'retry');
      const expected = err instanceof ApiError && ['Conflict', 'NotFound'].includes(err.reason);
      this.d.log[expected ? 'info' : 'warn']({ err, pool: key }, 'binding the VRAMPool failed; will retry');
      return 'error';
    }
  }

  /** Condition Bound=False with the reason (and a Warning Event), when the reason changed. */
  private async reportUnbound(pool: KubeObject, reason: string, why: string): Promise<void> {
    let current = pool;
    for (let attempt = 0; attempt < 4; attempt++) {
      const status = statusOf(current);
      const cond = status.conditions?.find((c) => c.type === CONDITION_BOUND);
      if (isBound(current) || current.metadata.uid !== pool.metadata.uid) return;
      if (status.phase === 'Pending' && cond?.status === 'False' && cond.reason === why && cond.message === reason) return;
      const next: PoolStatusShape = { ...status, phase: 'Pending', conditions: setCondition(status.conditions, { type: CONDITION_BOUND, status: 'False', reason: why, message: reason }) };
      try {
        const written = await this.d.registry.update(VRAMPool, current.metadata.namespace, current.metadata.name, { ...current, status: next }, { subresource: 'status' });
        this.d.inBackground(this.d.events.record(written, 'Warning', 'FailedBinding', reason));
        return;
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'Conflict')) return;
        const fresh = await this.d.registry.tryGet(VRAMPool, current.metadata.namespace, current.metadata.name);
        if (!fresh) return;
        current = fresh;
      }
    }
  }
}

const poolMember = (i: number): MemberRequest => ({ id: `${ROLE}-${i}`, role: ROLE, index: i, gpus: 0, gpuMilli: 0, vramBytes: 0, cpuMilli: 0, memoryBytes: 0 });

function describeDevices(devices: BoundDevice[]): string {
  const nodes = new Set(devices.map((d) => d.nodeName));
  return `${devices.length} device${devices.length === 1 ? '' : 's'} on ${[...nodes].join(', ')}`;
}

/** The status of a pool just bound: where, which weights are resident, condition Bound=True. */
export function boundStatus(pool: KubeObject, devices: BoundDevice[], placement: GangPlacement, now = new Date()): PoolStatusShape {
  const current = statusOf(pool);
  const loadedTime = timestamp(now);
  const residentModels = devices.flatMap((d) =>
    (specOf(pool).models ?? []).map((m) => ({ name: m.name, ...(m.digest ? { digest: m.digest } : {}), nodeName: d.nodeName, index: d.index, loadedTime })),
  );
  return {
    ...current,
    phase: 'Bound',
    boundDevices: devices,
    residentModels,
    observedGeneration: pool.metadata.generation ?? 1,
    conditions: setCondition(current.conditions, {
      type: CONDITION_BOUND,
      status: 'True',
      reason: 'Bound',
      message: `bound ${describeDevices(devices)}${placement.level === 'node' ? '' : ` within ${placement.level} ${placement.domain}`}`,
    }, now),
  };
}
