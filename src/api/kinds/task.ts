import { Type, Struct, StringEnum, NonNegativeInt, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';
import { ProcessFields, DeviceAssignment, MemberCheckpoint } from './workload.ts';

export const TaskPhase = ['Pending', 'Bound', 'Running', 'Succeeded', 'Failed', 'Lost'] as const;

/** Phases after which the Task's process is gone (and its devices are free). */
export const FINISHED_TASK_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'Lost']);
/** Phases in which a member counts as failed for its gang. */
export const FAILED_TASK_PHASES: ReadonlySet<string> = new Set(['Failed', 'Lost']);

export const TaskSpec = Struct({
  gangName: Type.Optional(Type.String({ description: 'The GangSchedulingGroup (or InferenceService replica gang) this member belongs to.' })),
  role: Type.Optional(Type.String()),
  index: Type.Optional(NonNegativeInt('Rank within the gang.')),
  worldSize: Type.Optional(NonNegativeInt('Members in the gang.')),
  attempt: Type.Optional(NonNegativeInt('Which restart of the gang this Task belongs to.')),
  localRank: Type.Optional(NonNegativeInt('Rank among the gang\'s members on the same node (LOCAL_RANK).')),
  rendezvous: Type.Optional(Struct({
    node: Type.String({ minLength: 1, description: 'The node of rank 0; its address becomes MASTER_ADDR.' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, description: 'MASTER_PORT.' }),
  })),
  nodeName: Type.Optional(Type.String({ description: 'The node the Task is bound to.' })),
  devices: Type.Optional(Type.Array(DeviceAssignment)),
  ...ProcessFields,
});
export type TaskSpec = Static<typeof TaskSpec>;

export const TaskStatus = StatusStruct({
  phase: Type.Optional(StringEnum(TaskPhase)),
  exitCode: Type.Optional(Type.Integer()),
  signal: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
  pid: Type.Optional(Type.Integer()),
  startTime: Type.Optional(Type.String({ format: 'date-time' })),
  finishTime: Type.Optional(Type.String({ format: 'date-time' })),
  logPath: Type.Optional(Type.String()),
  endpoint: Type.Optional(Type.String({ description: 'Where a serving member listens (InferenceService replicas): http://address:port.' })),
  /** Checkpoints this member has completed (manifest written and every file present), oldest first. */
  checkpoints: Type.Optional(Type.Array(MemberCheckpoint, { maxItems: 16 })),
});

export const Task: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'Task', plural: 'tasks', singular: 'task',
  shortNames: ['tk'], namespaced: true, categories: [...CATEGORIES],
  description: 'One running member of a gang: bound node and devices, process, phase, exit code.',
  spec: TaskSpec, status: TaskStatus, specRequired: true,
  selectableFields: ['spec.nodeName', 'spec.gangName', 'status.phase'],
  columns: [
    { name: 'Gang', type: 'string', description: 'Owning gang', jsonPath: '.spec.gangName' },
    { name: 'Node', type: 'string', description: 'Bound node', jsonPath: '.spec.nodeName' },
    { name: 'Phase', type: 'string', description: 'Phase', jsonPath: '.status.phase' },
    { name: 'Exit', type: 'integer', description: 'Exit code', jsonPath: '.status.exitCode' },
    { name: 'Devices', type: 'string', description: 'GPU indices', jsonPath: '.spec.devices[*].index', priority: 1,
      value: (o) => ((o.spec as TaskSpec).devices ?? []).map((d) => d.index).join(',') },
  ],
};

