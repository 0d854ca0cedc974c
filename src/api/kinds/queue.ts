import { Type, Struct, StringEnum, NonNegativeInt, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';

export const QueueSpec = Struct({
  parent: Type.Optional(Type.String({ minLength: 1, description: 'Parent queue in the hierarchy.' })),
  weight: Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 1, description: 'Fair-share weight among siblings.' })),
  quotas: Type.Optional(Type.Array(Struct({
    acceleratorClassName: Type.String({ minLength: 1, description: 'Class, or * for any.' }),
    nominal: Type.Number({ minimum: 0, description: 'GPUs guaranteed.' }),
    borrowingLimit: Type.Optional(Type.Number({ minimum: 0, description: 'GPUs it may borrow beyond nominal.' })),
    lendingLimit: Type.Optional(Type.Number({ minimum: 0, description: 'GPUs of its nominal it may lend.' })),
  }))),
  preemption: Type.Optional(Struct({
    withinQueue: StringEnum(['Never', 'LowerPriority'] as const, { default: 'LowerPriority' }),
    reclaimWithinCohort: StringEnum(['Never', 'LowerPriority', 'Any'] as const, { default: 'Any' }),
  })),
});
export type QueueSpec = Static<typeof QueueSpec>;

export const QueueStatus = StatusStruct({
  pendingGangs: Type.Optional(NonNegativeInt('')),
  admittedGangs: Type.Optional(NonNegativeInt('')),
  usage: Type.Optional(Type.Array(Struct({ acceleratorClassName: Type.String(), gpus: Type.Number({ minimum: 0 }) }))),
});

export const Queue: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'Queue', plural: 'queues', singular: 'queue',
  shortNames: ['q'], namespaced: false, categories: [...CATEGORIES],
  description: 'Quotas per accelerator class, fair-share weight and preemption policy.',
  spec: QueueSpec, status: QueueStatus,
  columns: [
    { name: 'Parent', type: 'string', description: 'Parent queue', jsonPath: '.spec.parent' },
    { name: 'Weight', type: 'number', description: 'Fair-share weight', jsonPath: '.spec.weight' },
    { name: 'Pending', type: 'integer', description: 'Pending gangs', jsonPath: '.status.pendingGangs' },
    { name: 'Admitted', type: 'integer', description: 'Admitted gangs', jsonPath: '.status.admittedGangs' },
  ],
};
