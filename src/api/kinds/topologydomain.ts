import { Type, Struct, Quantity, StringEnum, NonNegativeInt, TopologyLevel, StatusStruct, type Static } from '../schema.ts';
import { GROUP, VERSION, CATEGORIES, type KindDefinition } from '../kind.ts';

export const TopologyDomainSpec = Struct({
  level: TopologyLevel('Where this domain sits in the tree fabric → spine → leaf → node → numa → nvlink-island.'),
  parent: Type.Optional(Type.String({ minLength: 1, description: 'The enclosing domain (absent for the fabric).' })),
  nodeName: Type.Optional(Type.String({ minLength: 1, description: 'For in-node levels (numa, nvlink-island): the Node.' })),
  devices: Type.Optional(Type.Array(NonNegativeInt('GPU index'), { description: 'For in-node levels: the GPU indices inside the domain.' })),
  interconnect: Type.Optional(Struct({
    type: StringEnum(['infiniband', 'roce', 'ethernet', 'nvlink', 'nvswitch', 'pcie', 'upi', 'xgmi'] as const),
    bandwidth: Type.Optional(Quantity('Bandwidth per member link in bytes per second, e.g. 50G.')),
    latencyMicroseconds: Type.Optional(Type.Number({ minimum: 0 })),
  })),
});
export type TopologyDomainSpec = Static<typeof TopologyDomainSpec>;

export const TopologyDomainStatus = StatusStruct({
  nodes: Type.Optional(NonNegativeInt('Nodes inside the domain.')),
  gpus: Type.Optional(NonNegativeInt('GPUs inside the domain.')),
  freeGpus: Type.Optional(NonNegativeInt('Whole GPUs free inside the domain.')),
});

export const TopologyDomain: KindDefinition = {
  group: GROUP, version: VERSION, kind: 'TopologyDomain', plural: 'topologydomains', singular: 'topologydomain',
  shortNames: ['topo', 'td'], namespaced: false, categories: [...CATEGORIES],
  description: 'One domain of the hardware tree, with its parent and interconnect.',
  spec: TopologyDomainSpec, status: TopologyDomainStatus, specRequired: true,
  selectableFields: ['spec.level', 'spec.parent', 'spec.nodeName'],
  columns: [
    { name: 'Level', type: 'string', description: 'Tree level', jsonPath: '.spec.level' },
    { name: 'Parent', type: 'string', description: 'Enclosing domain', jsonPath: '.spec.parent' },
    { name: 'Interconnect', type: 'string', description: 'Link type', jsonPath: '.spec.interconnect.type' },
    { name: 'GPUs', type: 'integer', description: 'GPUs inside', jsonPath: '.status.gpus' },
  ],
};
