// The fleet file: a compact, hand-editable description of a whole (simulated) cluster —
// accelerator classes, node templates, the leaf/spine fabric and the queues — that
// expandFleet turns into ordinary k8s4ai objects. `kind: Fleet` is a file format read by
// `k8s4ai up --fleet`, the scheduler's tests, the simulator and the benchmarks; the API
// server does not serve it.
//
// The file's shape is written once here, with the same TypeBox building blocks as the
// served kinds, and the AcceleratorClass, Queue and TopologyDomain schemas are reused as
// they are (never restated), so a class spec in a fleet file is exactly an
// AcceleratorClass spec.
import { Type, Struct, Quantity, StringMap, PositiveInt, NonNegativeInt, type Static } from '../api/schema.ts';
import { API_VERSION, type KindDefinition } from '../api/kind.ts';
import { AcceleratorClassSpec } from '../api/kinds/acceleratorclass.ts';
import { QueueSpec } from '../api/kinds/queue.ts';
import { TopologyDomainSpec } from '../api/kinds/topologydomain.ts';

export const FLEET_API_VERSION = API_VERSION;
export const FLEET_KIND = 'Fleet';

/** The interconnect of a fabric level: exactly TopologyDomain's `spec.interconnect`. */
const InterconnectSchema = TopologyDomainSpec.properties.interconnect;
export type FleetInterconnect = NonNullable<TopologyDomainSpec['interconnect']>;

const LeafGroupSchema = Struct({
  count: Type.Optional(PositiveInt('Leaves of this shape; numbered on from the spine\'s earlier leaves (l1, l2, …).', { default: 1 })),
  nodes: PositiveInt('Nodes in each leaf.'),
  template: Type.String({ minLength: 1, description: 'The nodeTemplates entry every node of the leaf is made from.' }),
  interconnect: InterconnectSchema,
});

const SpineGroupSchema = Struct({
  count: Type.Optional(PositiveInt('Spines of this shape; numbered on from earlier spines (s1, s2, …).', { default: 1 })),
  interconnect: InterconnectSchema,
  leaves: Type.Array(LeafGroupSchema, { minItems: 1 }),
});

const FabricSchema = Struct({
  name: Type.String({ minLength: 1, description: 'Name of the fabric TopologyDomain, e.g. ib0.' }),
  interconnect: InterconnectSchema,
  spines: Type.Array(SpineGroupSchema, { minItems: 1 }),
});

const NodeTemplateSchema = Struct({
  acceleratorClass: Type.String({ minLength: 1, description: 'An acceleratorClasses entry: the class of every GPU of the node.' }),
  gpus: PositiveInt('GPUs per node.'),
  nvlinkIslandSize: Type.Optional(NonNegativeInt('GPUs per NVLink/NVSwitch island; 0 for PCIe-only devices.', { default: 0 })),
  numaNodes: Type.Optional(PositiveInt('NUMA nodes; GPUs are spread evenly, in index order.', { default: 1 })),
  cpu: Quantity('CPU cores (hardware threads).'),
  memory: Quantity('Host memory.'),
  nvme: Type.Optional(Quantity('Local NVMe.')),
  reservedGpuMemory: Type.Optional(Quantity('GPU memory the driver keeps on each device; defaults to the class\'s reservedMemory.')),
  driverVersion: Type.Optional(Type.String({ minLength: 1 })),
  cudaVersion: Type.Optional(Type.String({ minLength: 1 })),
  operatingSystem: Type.Optional(Type.String({ minLength: 1 })),
  labels: Type.Optional(StringMap('Extra labels for every node made from this template.')),
});

/**
 * The fleet file as a kind-like definition, so the project's one validator (defaults,
 * strict unknown-field refusal, Kubernetes-style field causes) checks it.
 */
export const FleetFileDefinition: KindDefinition = {
  group: 'k8s4ai.io', version: 'v1alpha1', kind: FLEET_KIND, plural: 'fleets', singular: 'fleet',
  shortNames: [], namespaced: false, categories: [],
  description: 'A fleet file: accelerator classes, node templates, fabric tree and queues of a cluster.',
  columns: [],
  topLevel: {
    acceleratorClasses: Type.Record(Type.String(), AcceleratorClassSpec, { minProperties: 1, description: 'AcceleratorClass specs by name.' }),
    nodeTemplates: Type.Record(Type.String(), NodeTemplateSchema, { minProperties: 1, description: 'Node shapes by name; the name starts every node name.' }),
    fabric: FabricSchema,
    queues: Type.Optional(Type.Record(Type.String(), QueueSpec, { description: 'Queue specs by name; absent: one `default` queue with every GPU as nominal quota.' })),
  },
};

export type FleetFileNodeTemplate = Static<typeof NodeTemplateSchema>;
export type FleetFileFabric = Static<typeof FabricSchema>;

// ---------------------------------------------------------------------------------------
// The parsed, resolved fleet that expandFleet reads: names given, counts unrolled down to
// leaves (nodes stay a count, so a 10,000-node fleet is a few hundred leaf records).

export interface FleetAcceleratorClass {
  name: string;
  /** The AcceleratorClass spec, defaults filled. */
  spec: AcceleratorClassSpec;
}

export interface FleetNodeTemplate {
  name: string;
  acceleratorClassName: string;
  gpus: number;
  /** 0: no NVLink, devices talk over PCIe. */
  nvlinkIslandSize: number;
  numaNodes: number;
  cpu: string | number;
  memory: string | number;
  nvme?: string | number;
  /** Per GPU, resolved from the template or the class. */
  reservedGpuMemory: string | number;
  driverVersion?: string;
  cudaVersion?: string;
  operatingSystem?: string;
  labels: Record<string, string>;
}

export interface FleetLeaf {
  /** Short id within the spine: l1, l2, … */
  id: string;
  /** TopologyDomain name: leaf-s1-l1. */
  name: string;
  /** The spine's TopologyDomain name. */
  spine: string;
  nodes: number;
  template: string;
  interconnect?: FleetInterconnect;
}

export interface FleetSpine {
  /** Short id: s1, s2, … */
  id: string;
  /** TopologyDomain name: spine-s1. */
  name: string;
  interconnect?: FleetInterconnect;
  leaves: FleetLeaf[];
}

export interface FleetFabric {
  name: string;
  interconnect?: FleetInterconnect;
  spines: FleetSpine[];
}

export interface FleetQueue {
  name: string;
  spec: QueueSpec;
}

export interface Fleet {
  apiVersion: string;
  kind: typeof FLEET_KIND;
  /** metadata.name; every expanded object carries it as the `k8s4ai.io/fleet` label. */
  name: string;
  /** Where the fleet came from (a path or a name), for messages. */
  source: string;
  /** metadata.labels, added to every expanded object. */
  labels: Record<string, string>;
  acceleratorClasses: FleetAcceleratorClass[];
  nodeTemplates: FleetNodeTemplate[];
  fabric: FleetFabric;
  /** Parents before children. */
  queues: FleetQueue[];
}

// ---------------------------------------------------------------------------------------
// Errors

/** One problem in a fleet file: the field path (`fabric.spines[0].leaves[1].template`), why, and the line when known. */
export interface FleetIssue {
  field: string;
  message: string;
  line?: number;
}

/** A fleet file that cannot be used; names the file, and each bad field with its line. */
export class FleetError extends Error {
  readonly code = 'K8S4AI_INVALID_FLEET';
  constructor(
    readonly source: string,
    readonly issues: FleetIssue[],
  ) {
    super(formatIssues(source, issues));
    this.name = 'FleetError';
  }
}

function formatIssue(issue: FleetIssue): string {
  return issue.field ? `${issue.field}: ${issue.message}` : issue.message;
}

function formatIssues(source: string, issues: FleetIssue[]): string {
  if (issues.length === 1) {
    const only = issues[0]!;
    return `${source}${only.line ? `:${only.line}` : ''}: ${formatIssue(only)}`;
  }
  const lines = issues.map((i) => `  ${i.line ? `line ${i.line}: ` : ''}${formatIssue(i)}`);
  return `${source}: ${issues.length} problems in the fleet file:\n${lines.join('\n')}`;
}

// Label keys the expansion writes.
export const LABEL_FLEET = 'k8s4ai.io/fleet';
export const LABEL_SIMULATED = 'k8s4ai.io/simulated';
export const LABEL_FABRIC = 'k8s4ai.io/fabric';
export const LABEL_SPINE = 'k8s4ai.io/spine';
export const LABEL_LEAF = 'k8s4ai.io/leaf';
export const LABEL_ACCELERATOR = 'k8s4ai.io/accelerator';
