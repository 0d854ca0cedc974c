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

/** A checkpoint every member completed: the gang restarts from the latest one. */
export const CompleteCheckpoint = Struct({
  id: Type.String(),
  step: NonNegativeInt(''),
  time: Type.String({ format: 'date-time' }),
  durationSeconds: Type.Number({ minimum: 0 }),
  sizeBytes: NonNegativeInt(''),
  nodes: Type.Array(Type.String()),
  /** Where each member's part is: the member (`<role>-<index>`), its node and folder. */
  locations: Type.Optional(Type.Array(Struct({ member: Type.String(), node: Type.String(), path: Type.String() }))),
});
export type CompleteCheckpoint = Static<typeof CompleteCheckpoint>;

export const GangSchedulingGroupStatus = StatusStruct({
  phase: Type.Optional(StringEnum(GangPhase)),
  placements: Type.Optional(Type.Array(MemberPlacement)),
  gpus: Type.Optional(Type.Number({ minimum: 0, description: 'GPU-equivalents the gang holds or asks for.' })),
  restarts: Type.Optional(NonNegativeInt('')),
  scheduledTime: Type.Optional(Type.String({ format: 'date-time' })),
  startTime: Type.Optional(Type.String({ format: 'date-time' })),
  completionTime: Type.Optional(Type.String({ format: 'date-time' })),
  lastCheckpoint: Type.Optional(CompleteCheckpoint),
  /** Complete checkpoints kept, newest first (at most keepLast); older ones are deleted by the agents. */
  checkpoints: Type.Optional(Type.Array(CompleteCheckpoint)),
  checkpointRequest: Type.Optional(Struct({
    id: Type.String({ minLength: 1 }),
    time: Type.String({ format: 'date-time' }),
    reason: StringEnum(['Interval', 'Preemption'] as const),
  }, { description: 'The checkpoint the members are asked to write now.' })),
  checkpointInterval: Type.Optional(Struct({
    seconds: Type.Number({ minimum: 0 }),
    reason: Type.String(),
  }, { description: 'The interval in use and why (fixed, or Young/Daly from observed MTBF and checkpoint cost).' })),
  lastFailure: Type.Optional(Struct({
    taskName: Type.String(),
    nodeName: Type.Optional(Type.String()),
    reason: Type.String(),
    message: Type.Optional(Type.String()),
    exitCode: Type.Optional(Type.Integer()),
    time: Type.String({ format: 'date-time' }),
    permanent: Type.Optional(Type.Boolean()),
  })),
  attemptStartTime: Type.Optional(Type.String({ format: 'date-time', description: 'When every member of the current attempt was first running.' })),
  checkpointSeq: Type.Optional(NonNegativeInt('Checkpoints requested so far; the next id is ckpt-<seq+1>.')),
  checkpointAttemptTime: Type.Optional(Type.String({ format: 'date-time', description: 'When the last checkpoint was requested, complete or not.' })),
  nextRestartTime: Type.Optional(Type.String({ format: 'date-time', description: 'When a Restarting gang is queued again (backoff).' })),
  preemptions: Type.Optional(NonNegativeInt('Clean stops after a preemption notice.')),
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
  { name: 'Restarts', type: 'integer', description: 'Restarts after failures', jsonPath: '.status.restarts', value: (o) => (readPath(o, 'status.restarts') as number | undefined) ?? 0 },
  { name: 'Checkpoint', type: 'string', description: 'Last complete checkpoint and its step', jsonPath: '.status.lastCheckpoint.id', priority: 1,
    value: (o) => {
      const c = readPath(o, 'status.lastCheckpoint') as { id: string; step: number } | undefined;
      return c ? `${c.id}@${c.step}` : '<none>';
    } },
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
