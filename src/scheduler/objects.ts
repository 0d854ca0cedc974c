// From API objects to the scheduler's model: Nodes and TopologyDomains into the cache's
// inputs, GangSchedulingGroups into gang requests. One translation for every host.
import type { KubeObject } from '../api/meta.ts';
import type { TopologyLevel } from '../api/schema.ts';
import { parseQuantity, quantityToNumber } from '../api/quantity.ts';
import { isNodeReady, type NodeStatus, type NodeSpec } from '../api/kinds/node.ts';
import type { TopologyDomainSpec } from '../api/kinds/topologydomain.ts';
import type { AcceleratorClassSpec } from '../api/kinds/acceleratorclass.ts';
import type { CompleteCheckpoint, GangSchedulingGroupSpec } from '../api/kinds/gangschedulinggroup.ts';
import type { InferenceServiceSpec } from '../api/kinds/inferenceservice.ts';
import type { MemberTemplate } from '../api/kinds/workload.ts';
import type { DomainInput, NodeInput } from './cache/cluster.ts';
import type { GangRequest, MemberRequest } from './framework/types.ts';

/** Base units (bytes, cores) of a quantity; 0 when absent. */
export const amount = (q: string | number | undefined): number => (q === undefined ? 0 : quantityToNumber(parseQuantity(q)));

/** Fabric/spine/leaf domains go to the cache; in-node levels are read from the GPUs themselves. */
export function domainInput(obj: KubeObject): DomainInput | undefined {
  const spec = obj.spec as TopologyDomainSpec;
  if (spec.level !== 'fabric' && spec.level !== 'spine' && spec.level !== 'leaf') return undefined;
  return { name: obj.metadata.name, level: spec.level, parent: spec.parent };
}

/** Device attributes for capability selectors: the GPU's own, then its class's. */
function attributesOf(gpu: NonNullable<NodeStatus['gpus']>[number], cls: AcceleratorClassSpec | undefined): Record<string, string> {
  const attrs: Record<string, string> = {};
  if (cls) {
    attrs.vendor = cls.vendor ?? 'nvidia';
    attrs.architecture = cls.architecture;
    attrs.fp8 = String(cls.fp8 ?? false);
    attrs.bf16 = String(cls.bf16 ?? false);
    if (cls.computeCapability) attrs.computeCapability = cls.computeCapability;
  }
  attrs.productName = gpu.productName;
  if (gpu.architecture) attrs.architecture = gpu.architecture;
  if (gpu.computeCapability) attrs.computeCapability = gpu.computeCapability;
  attrs.memory = String(Math.round(amount(gpu.memory)));
  if (gpu.acceleratorClassName) attrs.acceleratorClassName = gpu.acceleratorClassName;
  Object.assign(attrs, gpu.attributes ?? {});
  return attrs;
}

export function nodeInput(obj: KubeObject, classes: ReadonlyMap<string, AcceleratorClassSpec>): NodeInput {
  const spec = (obj.spec ?? {}) as NodeSpec;
  const status = (obj.status ?? {}) as NodeStatus;
  return {
    name: obj.metadata.name,
    labels: obj.metadata.labels ?? {},
    ready: isNodeReady(obj),
    unschedulable: spec.unschedulable ?? false,
    leaf: spec.topologyDomain,
    cpuMilli: Math.round(amount(status.capacity?.cpu) * 1000),
    memoryBytes: amount(status.capacity?.memory),
    devices: (status.gpus ?? []).map((g) => {
      const className = g.acceleratorClassName ?? g.productName;
      const cls = classes.get(className);
      return {
        index: g.index,
        uuid: g.uuid,
        className,
        attrs: attributesOf(g, cls),
        memoryBytes: amount(g.memory),
        reservedBytes: amount(g.reservedMemory ?? cls?.reservedMemory),
        numa: g.numaNode ?? 0,
        island: g.nvlinkIsland ?? g.index,
        mig: g.migEnabled
          ? (g.migDevices ?? []).map((m) => ({ profile: m.profile, instance: m.instance, uuid: m.uuid, memoryBytes: amount(m.memory) }))
          : undefined,
      };
    }),
  };
}

function memberRequests(role: string, replicas: number, template: MemberTemplate, offset: number, namespace: string): MemberRequest[] {
  const r = template.resources ?? {};
  const gpus = r.gpus ?? 0;
  const gpuMilli = gpus > 0 ? 0 : (r.computeMilli ?? 0);
  return Array.from({ length: replicas }, (_, i) => ({
    id: `${role}-${i}`,
    role,
    index: offset + i,
    gpus,
    gpuMilli,
    vramBytes: amount(r.vram),
    migProfile: r.migProfile,
    acceleratorClass: r.acceleratorClassName,
    capabilities: r.acceleratorSelector?.matchExpressions,
    cpuMilli: Math.round(amount(r.cpu) * 1000),
    memoryBytes: amount(r.memory),
    nodeSelector: template.nodeSelector,
    model: template.model,
    vramPool: template.vramPoolName ? `${namespace}/${template.vramPoolName}` : undefined,
  }));
}

export function gangRequest(obj: KubeObject): GangRequest {
  const spec = obj.spec as GangSchedulingGroupSpec;
  const members: MemberRequest[] = [];
  const ns = obj.metadata.namespace ?? 'default';
  for (const role of spec.roles) members.push(...memberRequests(role.name, role.replicas ?? 1, role.template, members.length, ns));
  // A restart prefers, member by member, the nodes that hold the latest checkpoint.
  const locations = (obj.status as { lastCheckpoint?: CompleteCheckpoint } | undefined)?.lastCheckpoint?.locations ?? [];
  for (const l of locations) {
    const m = members.find((x) => x.id === l.member);
    if (m) m.checkpointNode = l.node;
  }
  return {
    id: `${ns}/${obj.metadata.name}`,
    namespace: ns,
    name: obj.metadata.name,
    queue: spec.queueName ?? 'default',
    priority: spec.priority ?? 0,
    createdAt: Date.parse(String(obj.metadata.creationTimestamp ?? 0)) || 0,
    members,
    minMember: spec.minMember ?? members.length,
    requiredLevel: spec.topology?.required as TopologyLevel | undefined,
    preferredLevel: spec.topology?.preferred as TopologyLevel | undefined,
  };
}

/** The role of an InferenceService replica's members. */
export const REPLICA_ROLE = 'replica';

/** The name of an InferenceService's replica gang `r`: `<service>-r<r>`. */
export const replicaGangName = (service: string, r: number): string => `${service}-r${r}`;

/**
 * Replica `r` of an InferenceService as the gang it is placed as: `<service>-r<r>`, one
 * role of membersPerReplica members from the template. A template naming no model or pool
 * takes them from the service's first model.
 */
export function replicaGang(service: KubeObject, r: number): KubeObject {
  const spec = service.spec as InferenceServiceSpec;
  const first = spec.models[0];
  const template = {
    ...spec.template,
    ...(!spec.template.model && first ? { model: first.name } : {}),
    ...(!spec.template.vramPoolName && first?.vramPoolName ? { vramPoolName: first.vramPoolName } : {}),
  };
  const gangSpec: GangSchedulingGroupSpec = {
    roles: [{ name: REPLICA_ROLE, replicas: spec.membersPerReplica ?? 1, template }],
    ...(spec.queueName ? { queueName: spec.queueName } : {}),
    ...(spec.priority !== undefined ? { priority: spec.priority } : {}),
    ...(spec.topology ? { topology: spec.topology } : {}),
  } as GangSchedulingGroupSpec;
  return { ...service, kind: 'GangSchedulingGroup', metadata: { ...service.metadata, name: replicaGangName(service.metadata.name, r) }, spec: gangSpec };
}
