// The member template shared by GangSchedulingGroup roles, InferenceService replicas and
// Tasks: what one member runs and what it needs from the machine.
import {
  Type, Struct, Quantity, NonNegativeInt, EnvVar, CapabilitySelector, StringMap, TopologyLevel, type Static,
} from '../schema.ts';

/** What one member needs. GPUs are whole devices; vram/computeMilli/migProfile ask for part of one. */
export const MemberResources = Struct({
  gpus: Type.Optional(NonNegativeInt('Whole GPUs for this member.', { default: 0 })),
  vram: Type.Optional(Quantity('GPU memory on a shared device (e.g. 20Gi); with gpus > 0, the memory needed on each device.')),
  computeMilli: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'A share of one GPU\'s compute in thousandths (time-slice/MPS).' })),
  migProfile: Type.Optional(Type.String({ pattern: '^[0-9]+g\\.[0-9]+gb(\\+[a-z]+)?$', description: 'A MIG profile such as 1g.10gb or 3g.40gb, on a MIG-partitioned device.' })),
  acceleratorClassName: Type.Optional(Type.String({ minLength: 1, description: 'The AcceleratorClass the devices must belong to.' })),
  acceleratorSelector: Type.Optional(CapabilitySelector),
  cpu: Type.Optional(Quantity('CPU cores (e.g. 8, 500m).')),
  memory: Type.Optional(Quantity('Host memory (e.g. 64Gi).')),
  nvme: Type.Optional(Quantity('Local NVMe scratch space (e.g. 500Gi).')),
});
export type MemberResources = Static<typeof MemberResources>;

/** What a member runs: shared by the templates of gangs and services and by Tasks themselves. */
export const ProcessFields = {
  command: Type.Array(Type.String(), { minItems: 1, description: 'argv of the process; run directly, never through a shell.' }),
  args: Type.Optional(Type.Array(Type.String())),
  workingDir: Type.Optional(Type.String()),
  env: Type.Optional(Type.Array(EnvVar)),
  resources: Type.Optional(MemberResources),
  vramPoolName: Type.Optional(Type.String({ minLength: 1, description: 'A VRAMPool in the same namespace whose devices this member uses.' })),
  model: Type.Optional(Type.String({ minLength: 1, description: 'The model this member loads; devices already holding its weights score highest.' })),
  terminationGracePeriodSeconds: Type.Optional(NonNegativeInt('Seconds between SIGTERM and SIGKILL.', { default: 30 })),
};

export const MemberTemplate = Struct({
  ...ProcessFields,
  nodeSelector: Type.Optional(StringMap('Node labels the member requires.')),
});
export type MemberTemplate = Static<typeof MemberTemplate>;

/** The topology a gang requires and/or prefers. */
export const TopologyConstraint = Struct({
  required: Type.Optional(TopologyLevel('All members must fit inside one domain of this level.')),
  preferred: Type.Optional(TopologyLevel('Members should fit inside one domain of this level when possible.')),
});
export type TopologyConstraint = Static<typeof TopologyConstraint>;

/** One device a member was given. */
export const DeviceAssignment = Struct({
  index: NonNegativeInt('GPU index on the node.'),
  uuid: Type.Optional(Type.String()),
  migProfile: Type.Optional(Type.String()),
  migInstance: Type.Optional(NonNegativeInt('Which MIG instance of the profile on the device.')),
  vram: Type.Optional(Quantity('Memory held on the device; absent for a whole device.')),
  computeMilli: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});
export type DeviceAssignment = Static<typeof DeviceAssignment>;

/** One member's complete checkpoint, as its agent found the manifest. */
export const MemberCheckpoint = Struct({
  id: Type.String({ minLength: 1 }),
  step: NonNegativeInt('Training step the checkpoint holds.'),
  sizeBytes: NonNegativeInt('Bytes in the checkpoint\'s files.'),
  files: NonNegativeInt('Files in the checkpoint.'),
  time: Type.String({ format: 'date-time', description: 'When the manifest was written.' }),
  node: Type.String({ description: 'The node whose storage holds it.' }),
  path: Type.String({ description: 'The checkpoint folder on that node.' }),
});
export type MemberCheckpoint = Static<typeof MemberCheckpoint>;

export const GangPhase = ['Pending', 'Scheduled', 'Running', 'Restarting', 'Succeeded', 'Failed'] as const;

export const SchedulingPriority = {
  queueName: Type.Optional(Type.String({ minLength: 1, default: 'default', description: 'The Queue this workload is admitted through.' })),
  priority: Type.Optional(Type.Integer({ default: 0, description: 'Higher goes first; then age.' })),
  topology: Type.Optional(TopologyConstraint),
};
