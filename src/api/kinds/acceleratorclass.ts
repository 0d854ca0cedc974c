import { Type, Struct, Quantity, StringEnum, NonNegativeInt, CapabilitySelector, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';

const MigProfile = Struct({
  name: Type.String({ pattern: '^[0-9]+g\\.[0-9]+gb(\\+[a-z]+)?$', description: 'e.g. 1g.10gb' }),
  computeSlices: Type.Integer({ minimum: 1, maximum: 8, description: 'Compute slices (of 7 on A100/H100).' }),
  memorySlices: Type.Integer({ minimum: 1, maximum: 8, description: 'Memory slices (of 8).' }),
  memory: Quantity('Memory of one instance.'),
  maxCount: Type.Integer({ minimum: 1, maximum: 7, description: 'Instances of this profile that fit on one device.' }),
});

export const AcceleratorClassSpec = Struct({
  vendor: StringEnum(['nvidia', 'amd', 'intel', 'google', 'aws', 'other'] as const, { default: 'nvidia' }),
  productName: Type.String({ minLength: 1, description: 'Product name as the driver reports it, e.g. NVIDIA H100 80GB HBM3.' }),
  architecture: Type.String({ minLength: 1, description: 'e.g. hopper, ampere, ada-lovelace, blackwell.' }),
  memory: Quantity('Device memory, e.g. 80Gi.'),
  reservedMemory: Type.Optional(Quantity('Memory the driver and runtime keep; never handed out.', { default: '0' })),
  computeCapability: Type.Optional(Type.String({ pattern: '^[0-9]+\\.[0-9]+$', description: 'CUDA compute capability, e.g. 9.0.' })),
  fp8: Type.Optional(Type.Boolean({ default: false })),
  bf16: Type.Optional(Type.Boolean({ default: false })),
  tflops: Type.Optional(Struct({
    fp8: Type.Optional(Type.Number({ minimum: 0 })),
    bf16: Type.Optional(Type.Number({ minimum: 0 })),
    fp16: Type.Optional(Type.Number({ minimum: 0 })),
    fp32: Type.Optional(Type.Number({ minimum: 0 })),
  }, { description: 'Dense peak TFLOPS by precision.' })),
  interconnect: Type.Optional(Struct({
    type: StringEnum(['nvlink', 'nvswitch', 'pcie', 'xgmi', 'none'] as const),
    bandwidth: Quantity('Per-device bandwidth in bytes per second, e.g. 900G.'),
  })),
  migProfiles: Type.Optional(Type.Array(MigProfile, { description: 'MIG profiles the device supports.' })),
  mps: Type.Optional(Type.Boolean({ default: false, description: 'Supports MPS compute sharing.' })),
  gpuDirectStorage: Type.Optional(Type.Boolean({ default: false, description: 'NVMe-to-GPU peer-to-peer reads.' })),
  selector: Type.Optional(CapabilitySelector),
});
export type AcceleratorClassSpec = Static<typeof AcceleratorClassSpec>;

export const AcceleratorClassStatus = StatusStruct({
  devices: Type.Optional(NonNegativeInt('Devices in the cluster that belong to this class.')),
  allocatedDevices: Type.Optional(NonNegativeInt('Whole-device equivalents allocated.')),
});

export const AcceleratorClass: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'AcceleratorClass', plural: 'acceleratorclasses', singular: 'acceleratorclass',
  shortNames: ['acc'], namespaced: false, categories: [...CATEGORIES],
  description: 'A hardware capability profile; devices belong to a class and workloads ask for a class or for capabilities.',
  spec: AcceleratorClassSpec, status: AcceleratorClassStatus, specRequired: true,
  columns: [
    { name: 'Product', type: 'string', description: 'Product name', jsonPath: '.spec.productName' },
    { name: 'Arch', type: 'string', description: 'Architecture', jsonPath: '.spec.architecture' },
    { name: 'Memory', type: 'string', description: 'Device memory', jsonPath: '.spec.memory' },
    { name: 'FP8', type: 'boolean', description: 'FP8 support', jsonPath: '.spec.fp8' },
    { name: 'Devices', type: 'integer', description: 'Devices of this class', jsonPath: '.status.devices' },
  ],
};
