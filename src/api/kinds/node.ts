import { Type, Struct, Quantity, StringEnum, NonNegativeInt, StatusStruct, StringMap, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';
import type { KubeObject, Condition } from '../meta.ts';

/** One GPU as its agent reports it; attribute names follow the NVIDIA DRA driver's. */
export const NodeGpu = Struct({
  index: NonNegativeInt('Minor index as nvidia-smi reports it.'),
  uuid: Type.String({ minLength: 1 }),
  productName: Type.String({ minLength: 1 }),
  architecture: Type.Optional(Type.String()),
  memory: Quantity('Total device memory.'),
  reservedMemory: Type.Optional(Quantity('Memory the driver reserves; never handed out.')),
  computeCapability: Type.Optional(Type.String({ pattern: '^[0-9]+\\.[0-9]+$' })),
  driverVersion: Type.Optional(Type.String()),
  acceleratorClassName: Type.Optional(Type.String({ description: 'The AcceleratorClass this device belongs to.' })),
  numaNode: Type.Optional(Type.Integer({ minimum: -1 })),
  nvlinkIsland: Type.Optional(NonNegativeInt('Devices with the same island number share NVLink/NVSwitch.')),
  nvlinkPeers: Type.Optional(Type.Array(NonNegativeInt('GPU index'))),
  pcieBusId: Type.Optional(Type.String()),
  migEnabled: Type.Optional(Type.Boolean({ default: false })),
  migDevices: Type.Optional(Type.Array(Struct({
    profile: Type.String(),
    uuid: Type.Optional(Type.String()),
    instance: NonNegativeInt('GPU instance id'),
    memory: Type.Optional(Quantity('Instance memory')),
  }))),
  attributes: Type.Optional(StringMap('Further DRA-style attributes (fp8, brand, …).')),
});
export type NodeGpu = Static<typeof NodeGpu>;

export const NodeSpec = Struct({
  unschedulable: Type.Optional(Type.Boolean({ default: false })),
  taints: Type.Optional(Type.Array(Struct({
    key: Type.String({ minLength: 1 }),
    value: Type.Optional(Type.String()),
    effect: StringEnum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const),
  }))),
  topologyDomain: Type.Optional(Type.String({ minLength: 1, description: 'The leaf (or rack) domain the node sits in.' })),
  providerID: Type.Optional(Type.String()),
});
export type NodeSpec = Static<typeof NodeSpec>;

export const NodeStatus = StatusStruct({
  addresses: Type.Optional(Type.Array(Struct({
    type: StringEnum(['InternalIP', 'ExternalIP', 'Hostname'] as const),
    address: Type.String(),
  }))),
  capacity: Type.Optional(Struct({
    cpu: Type.Optional(Quantity('CPU cores')),
    memory: Type.Optional(Quantity('Host memory')),
    nvme: Type.Optional(Quantity('Local NVMe')),
  })),
  gpus: Type.Optional(Type.Array(NodeGpu)),
  freeGpus: Type.Optional(Type.Number({ minimum: 0, description: 'Whole GPUs not allocated (set by the scheduler).' })),
  topologyPath: Type.Optional(Type.Array(Type.String(), { description: 'Domains from the fabric down to this node.' })),
  heartbeatTime: Type.Optional(Type.String({ format: 'date-time' })),
  agentEndpoint: Type.Optional(Type.String({ description: 'URL of the agent serving this node (Task logs).' })),
  failures: Type.Optional(NonNegativeInt('Times the node was lost (heartbeat stopped) since it registered.')),
  lastFailureTime: Type.Optional(Type.String({ format: 'date-time' })),
  nodeInfo: Type.Optional(Struct({
    agentVersion: Type.Optional(Type.String()),
    driverVersion: Type.Optional(Type.String()),
    cudaVersion: Type.Optional(Type.String()),
    operatingSystem: Type.Optional(Type.String()),
    simulated: Type.Optional(Type.Boolean()),
  })),
});
export type NodeStatus = Static<typeof NodeStatus>;

const nodeStatus = (o: KubeObject) => (o.status ?? {}) as NodeStatus;

/** A Node's Ready condition, as its agent (or the node lifecycle controller) set it. */
export function readyCondition(o: KubeObject | undefined): Condition | undefined {
  return ((o?.status as NodeStatus | undefined)?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
}

/** Ready=True: the node takes new members and its agent is alive. */
export const isNodeReady = (o: KubeObject | undefined): boolean => readyCondition(o)?.status === 'True';

const readyOf = (o: KubeObject) => readyCondition(o)?.status ?? 'Unknown';

export const Node: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'Node', plural: 'nodes', singular: 'node',
  shortNames: ['kn'], namespaced: false, categories: [...CATEGORIES],
  description: 'A machine as its agent reports it: capacity, GPUs, topology, heartbeat.',
  spec: NodeSpec, status: NodeStatus,
  selectableFields: ['spec.topologyDomain', 'spec.unschedulable'],
  columns: [
    { name: 'Class', type: 'string', description: 'Accelerator class of its GPUs', jsonPath: '.status.gpus[0].acceleratorClassName',
      value: (o) => [...new Set((nodeStatus(o).gpus ?? []).map((g) => g.acceleratorClassName ?? g.productName))].join(',') || '<none>' },
    { name: 'GPUs', type: 'integer', description: 'GPUs on the node', jsonPath: '.status.gpus', value: (o) => (nodeStatus(o).gpus ?? []).length },
    { name: 'Free', type: 'number', description: 'Whole GPUs free', jsonPath: '.status.freeGpus',
      value: (o) => nodeStatus(o).freeGpus ?? (nodeStatus(o).gpus ?? []).length },
    { name: 'Ready', type: 'string', description: 'Ready condition', jsonPath: '.status.conditions[?(@.type=="Ready")].status', value: readyOf },
    { name: 'Domain', type: 'string', description: 'Leaf domain', jsonPath: '.spec.topologyDomain', priority: 1 },
  ],
};
