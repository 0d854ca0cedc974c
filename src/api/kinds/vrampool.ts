import { Type, Struct, Quantity, StringEnum, NonNegativeInt, PositiveInt, Duration, CapabilitySelector, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';

export const ModelWeights = Struct({
  name: Type.String({ minLength: 1, description: 'Model name, e.g. meta-llama/Llama-3.1-8B-Instruct.' }),
  digest: Type.Optional(Type.String({ pattern: '^[a-z0-9]+:[a-fA-F0-9]+$', description: 'Content digest, e.g. sha256:…' })),
  size: Quantity('Bytes of weights per device.'),
  source: Type.Optional(Type.String({ description: 'Where the weights come from (path or URI).' })),
});

export const VRAMPoolSpec = Struct({
  devices: PositiveInt('How many devices the pool claims.', { default: 1 }),
  sizePerDevice: Type.Optional(Quantity('Memory claimed on each device; absent with Exclusive: the whole device.')),
  acceleratorClassName: Type.Optional(Type.String({ minLength: 1 })),
  acceleratorSelector: Type.Optional(CapabilitySelector),
  sharing: StringEnum(['Exclusive', 'MIG', 'MPS', 'TimeSlice'] as const, { default: 'Exclusive' }),
  migProfile: Type.Optional(Type.String({ pattern: '^[0-9]+g\\.[0-9]+gb(\\+[a-z]+)?$' })),
  computeMilli: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Compute share with MPS/TimeSlice.' })),
  models: Type.Optional(Type.Array(ModelWeights, { description: 'Weights the pool must hold resident.' })),
  retention: Type.Optional(Struct({
    policy: StringEnum(['KeepWarm', 'ReleaseWhenIdle'] as const, { default: 'KeepWarm' }),
    idleTimeout: Type.Optional(Duration('With ReleaseWhenIdle: how long unused before the devices are released.')),
  })),
});
export type VRAMPoolSpec = Static<typeof VRAMPoolSpec>;

export const VRAMPoolStatus = StatusStruct({
  phase: Type.Optional(StringEnum(['Pending', 'Bound', 'Released', 'Lost'] as const)),
  boundDevices: Type.Optional(Type.Array(Struct({
    nodeName: Type.String(),
    index: NonNegativeInt('GPU index'),
    uuid: Type.Optional(Type.String()),
    size: Type.Optional(Quantity('Memory held')),
    migInstance: Type.Optional(NonNegativeInt('MIG instance')),
  }))),
  residentModels: Type.Optional(Type.Array(Struct({
    name: Type.String(),
    digest: Type.Optional(Type.String()),
    nodeName: Type.String(),
    index: NonNegativeInt('GPU index'),
    loadedTime: Type.Optional(Type.String({ format: 'date-time' })),
  }))),
  lastUsedTime: Type.Optional(Type.String({ format: 'date-time' })),
});

export const VRAMPool: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'VRAMPool', plural: 'vrampools', singular: 'vrampool',
  shortNames: ['vp'], namespaced: true, categories: [...CATEGORIES],
  description: 'A claim on GPU memory that outlives its workloads, so model weights stay warm.',
  spec: VRAMPoolSpec, status: VRAMPoolStatus, specRequired: true,
  columns: [
    { name: 'Devices', type: 'integer', description: 'Devices claimed', jsonPath: '.spec.devices' },
    { name: 'Size', type: 'string', description: 'Per device', jsonPath: '.spec.sizePerDevice' },
    { name: 'Sharing', type: 'string', description: 'Sharing mode', jsonPath: '.spec.sharing' },
    { name: 'Phase', type: 'string', description: 'Binding phase', jsonPath: '.status.phase' },
  ],
};
