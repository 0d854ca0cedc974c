import { Type, Struct, StringEnum, NonNegativeInt, PositiveInt, Duration, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, readPath, type KindDefinition, type PrinterColumn } from '../kind.ts';
import type { KubeObject } from '../meta.ts';
import { MemberTemplate, DeviceAssignment, GangPhase, SchedulingPriority } from './workload.ts';

export const GangRole = Struct({
  name: Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 }),
  replicas: PositiveInt('Members in this role.', { default: 1 }),
  template: MemberTemplate,
});

export const GangSchedulingGroupSpec = Struct({
  roles: Type.Array(GangRole, { minItems: 1 }),
  minMember: Type.Optional(PositiveInt('Members that must be placed together; defaults to all.')),
  ...SchedulingPriority,
  scheduleTimeout: Type.Optional(Duration('Give up (phase Failed) if not placed within this time.')),
  checkpointPolicyName: Type.Optional(Type.String({ minLength: 1 })),
  vramPoolNames: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  maxRestarts: Type.Optional(NonNegativeInt('Overrides the CheckpointPolicy\'s maxRestarts.')),
  suspend: Type.Optional(Type.Boolean({ default: false })),
});
export type GangSchedulingGroupSpec = Static<typeof GangSchedulingGroupSpec>;

export const MemberPlacement = Struct({
  role: Type.String(),
  index: NonNegativeInt('Member index within the role.'),
  taskName: Type.String(),
  nodeName: Type.String(),
  devices: Type.Array(DeviceAssignment),
  topologyPath: Type.Optional(Type.Array(Type.String())),
  reason: Type.Optional(Type.String({ description: 'Why this node and these devices (warm weights, NVLink island…).' })),
});

export const GangSchedulingGroupStatus = StatusStruct({
  phase: Type.Optional(StringEnum(GangPhase)),
  placements: Type.Optional(Type.Array(MemberPlacement)),
  gpus: Type.Optional(Type.Number({ minimum: 0, description: 'GPU-equivalents the gang holds or asks for.' })),
  restarts: Type.Optional(NonNegativeInt('')),
  scheduledTime: Type.Optional(Type.String({ format: 'date-time' })),
  startTime: Type.Optional(Type.String({ format: 'date-time' })),
  completionTime: Type.Optional(Type.String({ format: 'date-time' })),
  lastCheckpoint: Type.Optional(Struct({
    id: Type.String(),
    step: NonNegativeInt(''),
    time: Type.String({ format: 'date-time' }),
    durationSeconds: Type.Number({ minimum: 0 }),
    sizeBytes: NonNegativeInt(''),
    nodes: Type.Array(Type.String()),
  })),
});

/** GPU-equivalents a gang asks for: whole GPUs plus fractions (computeMilli) of shared ones. */
export function gangGpus(obj: KubeObject): number {
  const spec = obj.spec as GangSchedulingGroupSpec | undefined;
  let total = 0;
  for (const role of spec?.roles ?? []) {
    const r = role.template.resources ?? {};
    const perMember = r.gpus && r.gpus > 0 ? r.gpus : r.computeMilli ? r.computeMilli / 1000 : r.vram || r.migProfile ? 1 : 0;
    total += perMember * (role.replicas ?? 1);
  }
  return Math.round(total * 1000) / 1000;
}

const gangColumns: PrinterColumn[] = [
  { name: 'Queue', type: 'string', description: 'Queue', jsonPath: '.spec.queueName' },
  { name: 'GPUs', type: 'number', description: 'GPUs requested', jsonPath: '.status.gpus', value: (o) => gangGpus(o) },
  { name: 'Phase', type: 'string', description: 'Lifecycle phase', jsonPath: '.status.phase', value: (o) => (readPath(o, 'status.phase') as string | undefined) ?? 'Pending' },
  { name: 'Restarts', type: 'integer', description: 'Restarts', jsonPath: '.status.restarts', priority: 1 },
  { name: 'Priority', type: 'integer', description: 'Priority', jsonPath: '.spec.priority', priority: 1 },
];

export const GangSchedulingGroup: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'GangSchedulingGroup', plural: 'gangschedulinggroups', singular: 'gangschedulinggroup',
  // 'gangs' too: `kubectl get gangs` (the hint `k8s4ai up` prints) must resolve; kubectl matches short names exactly.
  shortNames: ['gang', 'gangs', 'gsg'], namespaced: true, categories: [...CATEGORIES],
  description: 'A distributed job whose members are placed and run together.',
  spec: GangSchedulingGroupSpec, status: GangSchedulingGroupStatus, specRequired: true,
  selectableFields: ['spec.queueName', 'status.phase'],
  columns: gangColumns,
};
