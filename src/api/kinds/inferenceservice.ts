import { Type, Struct, Quantity, StringEnum, NonNegativeInt, PositiveInt, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';
import { MemberTemplate, SchedulingPriority } from './workload.ts';

export const InferenceServiceSpec = Struct({
  models: Type.Array(Struct({
    name: Type.String({ minLength: 1 }),
    size: Type.Optional(Quantity('Bytes of weights.')),
    vramPoolName: Type.Optional(Type.String({ minLength: 1 })),
  }), { minItems: 1 }),
  replicas: NonNegativeInt('Serving replicas.', { default: 1 }),
  minReplicas: Type.Optional(NonNegativeInt('')),
  maxReplicas: Type.Optional(PositiveInt('')),
  membersPerReplica: PositiveInt('Members of each replica gang (tensor/pipeline parallel).', { default: 1 }),
  template: MemberTemplate,
  port: Type.Integer({ minimum: 1, maximum: 65535, default: 8000, description: 'Port each replica serves on.' }),
  ...SchedulingPriority,
  scaling: Type.Optional(Struct({
    metric: StringEnum(['InFlightRequests', 'OutstandingPrefillTokens'] as const),
    target: Type.Number({ exclusiveMinimum: 0 }),
  })),
});
export type InferenceServiceSpec = Static<typeof InferenceServiceSpec>;

export const InferenceServiceStatus = StatusStruct({
  replicas: Type.Optional(NonNegativeInt('')),
  readyReplicas: Type.Optional(NonNegativeInt('')),
  endpoints: Type.Optional(Type.Array(Type.String())),
});

export const InferenceService: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'InferenceService', plural: 'inferenceservices', singular: 'inferenceservice',
  shortNames: ['isvc'], namespaced: true, categories: [...CATEGORIES],
  description: 'Replicated model serving; each replica may be a multi-GPU gang.',
  spec: InferenceServiceSpec, status: InferenceServiceStatus, specRequired: true,
  columns: [
    { name: 'Models', type: 'string', description: 'Models served', jsonPath: '.spec.models[*].name',
      value: (o) => ((o.spec as InferenceServiceSpec | undefined)?.models ?? []).map((m) => m.name).join(',') },
    { name: 'Replicas', type: 'integer', description: 'Desired replicas', jsonPath: '.spec.replicas' },
    { name: 'Ready', type: 'integer', description: 'Ready replicas', jsonPath: '.status.readyReplicas' },
  ],
};
