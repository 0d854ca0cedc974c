// Allocate: which devices of a node a member would get.
// - MIG: a free instance of exactly the requested profile on a MIG-partitioned device.
// - Whole GPUs: wholly free devices, packed into one NVLink island when one can hold them
//   (the island with the fewest free devices that suffices), then one NUMA node.
// - A share (gpuMilli and/or vram): every device with that much compute and memory free
//   is a choice, so score plugins can weigh fragmentation per device, as FGD does.
// Memory the driver reserves was taken off each device's allocatable memory in the cache.
import type { AllocatePlugin, DeviceChoice, DeviceGrant, MemberRequest } from '../../framework/types.ts';
import type { DeviceState, NodeState } from '../../cache/cluster.ts';
import { deviceIsWholeFree } from '../../cache/cluster.ts';
import { deviceMatches } from '../accelerator/index.ts';

export const Name = 'DeviceAllocator';

const grantWhole = (d: DeviceState): DeviceGrant => ({ index: d.index, uuid: d.uuid, whole: true, milli: 1000, memoryBytes: d.memoryBytes });

function migChoices(member: MemberRequest, node: NodeState): DeviceChoice[] {
  const out: DeviceChoice[] = [];
  for (const d of node.devices) {
    if (!d.mig || !deviceMatches(member, d)) continue;
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

function shareChoices(member: MemberRequest, node: NodeState): DeviceChoice[] {
  const out: DeviceChoice[] = [];
  for (const d of node.devices) {
    if (d.mig || d.pool || !deviceMatches(member, d)) continue;
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
    choices(_ctx, member, node) {
      if (member.migProfile) return migChoices(member, node);
      if (member.gpus > 0) return wholeChoice(member, node);
      if (member.gpuMilli > 0 || member.vramBytes > 0) return shareChoices(member, node);
      return [{ devices: [] }];
    },
  };
}
