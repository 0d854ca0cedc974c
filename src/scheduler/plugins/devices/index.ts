// Allocate: which devices of a node a member would get.
// - MIG: a free instance of exactly the requested profile on a MIG-partitioned device.
// - Whole GPUs: wholly free devices, packed into one NVLink island when one can hold them
//   (the island with the fewest free devices that suffices), then one NUMA node.
// - A share (gpuMilli and/or vram): every device with that much compute and memory free
//   is a choice, so score plugins can weigh fragmentation per device, as FGD does.
// - A member naming a bound VRAMPool gets devices of that pool and only those: the pool's
//   own grant on a device nobody else of the pool uses (one device, or `gpus` devices on
//   one node), or, when it asks for a share, its share of any pool device. The pool holds
//   the capacity, so these grants take none (no accounting of shares within a pool yet).
//   A pool that is not bound (no device tagged with it) leaves the member placed as usual.
// - A VRAMPool being placed (a pseudo-gang, one member per device) never gets the same
//   device twice; outside a pool's own share, the rest of a shared pool device stays usable.
// Memory the driver reserves was taken off each device's allocatable memory in the cache.
import type { AllocatePlugin, CycleContext, DeviceChoice, DeviceGrant, MemberRequest } from '../../framework/types.ts';
import type { DeviceState, NodeState } from '../../cache/cluster.ts';
import { deviceIsWholeFree, POOL_HOLDER_PREFIX } from '../../cache/cluster.ts';
import { deviceMatches } from '../accelerator/index.ts';

export const Name = 'DeviceAllocator';

const grantWhole = (d: DeviceState): DeviceGrant => ({ index: d.index, uuid: d.uuid, whole: true, milli: 1000, memoryBytes: d.memoryBytes });

/** Devices this attempt already gave to a VRAMPool being placed (one member per device). */
function takenByPool(ctx: CycleContext, node: NodeState): Set<number> | undefined {
  if (!ctx.gang.id.startsWith(POOL_HOLDER_PREFIX)) return undefined;
  const taken = new Set<number>();
  for (const p of ctx.placed) if (p.node === node.name) for (const g of p.devices) taken.add(g.index);
  return taken;
}

function poolChoices(member: MemberRequest, node: NodeState, pool: string): DeviceChoice[] {
  const mine = node.devices.filter((d) => d.pool === pool && d.poolGrant && deviceMatches(member, d));
  if (!mine.length) return [];
  if (!member.poolDevices && member.gpus === 0 && !member.migProfile && (member.gpuMilli > 0 || member.vramBytes > 0)) {
    return mine.map((d) => ({
      devices: [{ index: d.index, uuid: d.uuid, whole: false, milli: member.gpuMilli, memoryBytes: member.vramBytes, pool }],
      note: `GPU ${d.index} of VRAMPool ${pool}`,
    }));
  }
  const n = Math.max(1, member.poolDevices ?? member.gpus);
  const free = mine.filter((d) => !d.poolUsers).sort(warmFirst(member));
  if (free.length < n) return [];
  const picked = free.slice(0, n);
  return [{ devices: picked.map((d) => ({ ...d.poolGrant!, pool })), note: `${n === 1 ? `GPU ${picked[0]!.index}` : `${n} GPUs`} of VRAMPool ${pool}` }];
}

function migChoices(member: MemberRequest, node: NodeState, taken?: Set<number>): DeviceChoice[] {
  const out: DeviceChoice[] = [];
  for (const d of node.devices) {
    if (!d.mig || !deviceMatches(member, d) || taken?.has(d.index)) continue;
    const free = d.mig.find((m) => m.profile === member.migProfile && !m.usedBy);
    if (!free) continue;
    out.push({
      devices: [{ index: d.index, uuid: free.uuid ?? d.uuid, whole: false, milli: 0, memoryBytes: 0, migProfile: free.profile, migInstance: free.instance }],
      note: `MIG ${free.profile} instance ${free.instance} on GPU ${d.index}`,
    });
  }
  return out;
}

/** Devices already holding the member's weights (or bound to its pool) come first. */
const warmFirst = (member: MemberRequest) => (a: DeviceState, b: DeviceState) => Number(isWarm(member, b)) - Number(isWarm(member, a)) || a.index - b.index;
const isWarm = (member: MemberRequest, d: DeviceState) => Boolean((member.model && d.models.has(member.model)) || (member.vramPool && d.pool === member.vramPool));

function wholeChoice(member: MemberRequest, node: NodeState): DeviceChoice[] {
  if (node.freeWhole < member.gpus) return []; // cheap exit: too few wholly free devices of any kind
  const free = node.devices.filter((d) => deviceIsWholeFree(d) && deviceMatches(member, d) && d.memoryBytes >= member.vramBytes).sort(warmFirst(member));
  if (free.length < member.gpus) return [];
  const byIsland = new Map<number, DeviceState[]>();
  for (const d of free) byIsland.set(d.island, [...(byIsland.get(d.island) ?? []), d]);
  // The smallest island that holds every device keeps bigger islands whole for later.
  const fitting = [...byIsland.entries()].filter(([, ds]) => ds.length >= member.gpus).sort((a, b) => a[1].length - b[1].length || a[0] - b[0]);
  if (fitting.length) {
    const [island, ds] = fitting[0]!;
    const picked = pickByNuma(member, ds, member.gpus);
    return [{ devices: picked.map(grantWhole), note: `${member.gpus} GPU(s) in NVLink island ${island}` }];
  }
  // Spanning islands: take the fullest islands first, so as few as possible are split.
  const ordered = [...byIsland.values()].sort((a, b) => b.length - a.length).flat();
  const picked = ordered.slice(0, member.gpus);
  return [{ devices: picked.map(grantWhole), note: `${member.gpus} GPU(s) across ${new Set(picked.map((d) => d.island)).size} NVLink islands` }];
}

/** Devices of one NUMA node when possible: the one with the most warm devices, then the smallest that fits. */
function pickByNuma(member: MemberRequest, devices: DeviceState[], n: number): DeviceState[] {
  const byNuma = new Map<number, DeviceState[]>();
  for (const d of devices) byNuma.set(d.numa, [...(byNuma.get(d.numa) ?? []), d]);
  const warmCount = (ds: DeviceState[]) => ds.filter((d) => isWarm(member, d)).length;
  const one = [...byNuma.values()].filter((ds) => ds.length >= n).sort((a, b) => warmCount(b) - warmCount(a) || a.length - b.length)[0];
  return (one ?? devices).slice(0, n);
}

function shareChoices(member: MemberRequest, node: NodeState, taken?: Set<number>): DeviceChoice[] {
  const out: DeviceChoice[] = [];
  for (const d of node.devices) {
    if (d.mig || taken?.has(d.index) || !deviceMatches(member, d)) continue;
    if (d.milliFree < member.gpuMilli || d.memoryFree < member.vramBytes) continue;
    out.push({
      devices: [{ index: d.index, uuid: d.uuid, whole: false, milli: member.gpuMilli, memoryBytes: member.vramBytes }],
      note: d.milliFree < 1000 || d.memoryFree < d.memoryBytes ? `shares GPU ${d.index}` : `GPU ${d.index}`,
    });
  }
  return out;
}

export function create(): AllocatePlugin {
  return {
    name: Name,
    choices(ctx, member, node) {
      if (member.vramPool && ctx.cache.pools.has(member.vramPool)) return poolChoices(member, node, member.vramPool);
      const taken = takenByPool(ctx, node);
      if (member.migProfile) return migChoices(member, node, taken);
      if (member.gpus > 0) return wholeChoice(member, node);
      if (member.gpuMilli > 0 || member.vramBytes > 0) return shareChoices(member, node, taken);
      return [{ devices: [] }];
    },
  };
}
