import { Type, Struct, StringEnum, NonNegativeInt, PositiveInt, Duration, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';

export const CheckpointPolicySpec = Struct({
  interval: Type.Unsafe<string>({
    type: 'string', default: 'auto', pattern: '^(auto|([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$',
    description: '`auto` (Young/Daly from observed MTBF and checkpoint cost) or a fixed duration such as 15m.',
  }),
  mtbfHint: Type.Optional(Duration('Mean time between failures to assume before any is observed.')),
  checkpointTimeout: Type.Optional(Duration('How long a checkpoint may take before it counts as failed.', { default: '10m' })),
  storage: Struct({
    type: StringEnum(['LocalNVMe', 'Shared'] as const, { default: 'LocalNVMe' }),
    path: Type.String({ minLength: 1, description: 'Directory under which checkpoints are written.' }),
  }),
  keepLast: Type.Optional(PositiveInt('Complete checkpoints to keep; older ones go only after a newer one is complete.', { default: 3 })),
  restore: Type.Optional(Struct({
    strategy: StringEnum(['RestartGang'] as const, { default: 'RestartGang' }),
    preferLocalCopy: Type.Optional(Type.Boolean({ default: true })),
    maxRestarts: Type.Optional(NonNegativeInt('Restarts before the gang fails.', { default: 10 })),
    backoff: Type.Optional(Struct({
      initial: Duration('First delay.', { default: '10s' }),
      max: Duration('Largest delay.', { default: '5m' }),
    })),
    permanentExitCodes: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 255 }), { description: 'Exit codes that fail the gang at once.' })),
  })),
  preemptionGracePeriod: Type.Optional(Duration('Time for a just-in-time checkpoint after a preemption notice.', { default: '60s' })),
});
export type CheckpointPolicySpec = Static<typeof CheckpointPolicySpec>;

export const CheckpointPolicyStatus = StatusStruct({
  intervalSeconds: Type.Optional(Type.Number({ minimum: 0 })),
  intervalReason: Type.Optional(Type.String()),
  observedMTBFSeconds: Type.Optional(Type.Number({ minimum: 0 })),
  measuredCheckpointSeconds: Type.Optional(Type.Number({ minimum: 0 })),
});

export const CheckpointPolicy: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'CheckpointPolicy', plural: 'checkpointpolicies', singular: 'checkpointpolicy',
  shortNames: ['ckpt'], namespaced: true, categories: [...CATEGORIES],
  description: 'When and where a gang checkpoints, and how it is restored after a failure.',
  spec: CheckpointPolicySpec, status: CheckpointPolicyStatus, specRequired: true,
  columns: [
    { name: 'Interval', type: 'string', description: 'Configured interval', jsonPath: '.spec.interval' },
    { name: 'In-Use', type: 'number', description: 'Interval in use (s)', jsonPath: '.status.intervalSeconds' },
    { name: 'Storage', type: 'string', description: 'Storage type', jsonPath: '.spec.storage.type' },
    { name: 'Keep', type: 'integer', description: 'Checkpoints kept', jsonPath: '.spec.keepLast' },
  ],
};
