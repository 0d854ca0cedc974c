// Fleet → k8s4ai objects, in dependency order: AcceleratorClasses, TopologyDomains (fabric,
// spines, leaves, then each node's node/NUMA/NVLink-island domains), Nodes, Queues.
//
// Linear in the number of GPUs and deterministic: no clock, no randomness, names and GPU
// UUIDs derived from positions in the tree. Everything that is the same for every node of
// a template (NUMA and island layout, peers, attributes) is worked out once per template.
import { API_VERSION } from '../api/kind.ts';
import type { KubeObject } from '../api/meta.ts';
import type { NodeGpu, NodeSpec, NodeStatus } from '../api/kinds/node.ts';
import type { TopologyDomainSpec } from '../api/kinds/topologydomain.ts';
import type { AcceleratorClassSpec } from '../api/kinds/acceleratorclass.ts';
import {
  FleetError, LABEL_ACCELERATOR, LABEL_FABRIC, LABEL_FLEET, LABEL_LEAF, LABEL_SIMULATED, LABEL_SPINE,
  type Fleet, type FleetInterconnect, type FleetNodeTemplate,
} from './format.ts';
import { gpuUuid } from './uuid.ts';

export interface ExpandOptions {
  /**
   * Emit each node's in-node TopologyDomains (node, NUMA, NVLink island), as an agent
   * publishes them. Default true; large benchmarks that only need the fabric may skip them.
   */
  inNodeDomains?: boolean;
}

/** Per-template layout, shared by every node of the template. */
interface TemplateLayout {
  template: FleetNodeTemplate;
  cls: AcceleratorClassSpec;
  numaOf: number[];
  islandOf: number[];
  peersOf: number[][];
  /** GPU indices per NUMA node / per island. */
  numaDevices: number[][];
  islandDevices: number[][];
  attributes: Record<string, string>;
  nodeLabels: Record<string, string>;
  islandInterconnect?: FleetInterconnect;
}

const BRANDS: Record<string, string> = { nvidia: 'Nvidia', amd: 'AMD', intel: 'Intel', google: 'Google', aws: 'AWS', other: 'Other' };

/** Expands a parsed fleet into full objects, each valid for its kind, in dependency order. */
export function expandFleet(fleet: Fleet, options: ExpandOptions = {}): KubeObject[] {
  const inNode = options.inNodeDomains ?? true;
  const baseLabels = { ...fleet.labels, [LABEL_FLEET]: fleet.name };
  const classes = new Map(fleet.acceleratorClasses.map((c) => [c.name, c.spec]));
  const layouts = new Map<string, TemplateLayout>();
  for (const t of fleet.nodeTemplates) {
    const cls = classes.get(t.acceleratorClassName);
    if (!cls) throw new FleetError(fleet.source, [{ field: `nodeTemplates.${t.name}.acceleratorClass`, message: `"${t.acceleratorClassName}" is not declared in acceleratorClasses` }]);
    layouts.set(t.name, layoutOf(t, cls, baseLabels));
  }

  // Counts per class and per domain, for AcceleratorClass and TopologyDomain status.
  const devicesByClass = new Map<string, number>();
  let fabricNodes = 0;
  let fabricGpus = 0;
  const spineTotals = fleet.fabric.spines.map((spine) => {
    let nodes = 0;
    let gpus = 0;
    for (const leaf of spine.leaves) {
      const layout = layoutFor(layouts, leaf.template, fleet, leaf.name);
      const leafGpus = leaf.nodes * layout.template.gpus;
      nodes += leaf.nodes;
      gpus += leafGpus;
      devicesByClass.set(layout.template.acceleratorClassName, (devicesByClass.get(layout.template.acceleratorClassName) ?? 0) + leafGpus);
    }
    fabricNodes += nodes;
    fabricGpus += gpus;
    return { nodes, gpus };
  });

  const out: KubeObject[] = [];

  for (const c of fleet.acceleratorClasses) {
    out.push({
      apiVersion: API_VERSION,
      kind: 'AcceleratorClass',
      metadata: { name: c.name, labels: { ...baseLabels } },
      spec: structuredClone(c.spec),
      status: { devices: devicesByClass.get(c.name) ?? 0 },
    });
  }

  // The fabric levels, outermost first.
  const fabric = fleet.fabric;
  out.push(domain(fabric.name, baseLabels, { level: 'fabric', ...copyInterconnect(fabric.interconnect) }, fabricNodes, fabricGpus));
  fabric.spines.forEach((spine, i) => {
    const t = spineTotals[i]!;
    out.push(domain(spine.name, baseLabels, { level: 'spine', parent: fabric.name, ...copyInterconnect(spine.interconnect) }, t.nodes, t.gpus));
  });
  for (const spine of fabric.spines) {
    for (const leaf of spine.leaves) {
      const gpus = leaf.nodes * layouts.get(leaf.template)!.template.gpus;
      out.push(domain(leaf.name, baseLabels, { level: 'leaf', parent: spine.name, ...copyInterconnect(leaf.interconnect) }, leaf.nodes, gpus));
    }
  }

  // Nodes, with their in-node domains ahead of them (all domains before all Nodes).
  const nodes: KubeObject[] = [];
  for (const spine of fabric.spines) {
    for (const leaf of spine.leaves) {
      const layout = layouts.get(leaf.template)!;
      const prefix = `${layout.template.name}-${spine.id}-${leaf.id}-n`;
      const topologyLabels = { [LABEL_FABRIC]: fabric.name, [LABEL_SPINE]: spine.name, [LABEL_LEAF]: leaf.name };
      for (let n = 1; n <= leaf.nodes; n++) {
        const nodeName = prefix + n;
        if (inNode) pushNodeDomains(out, nodeName, leaf.name, layout, baseLabels);
        nodes.push(makeNode(nodeName, fleet, [fabric.name, spine.name, leaf.name], layout, topologyLabels));
      }
    }
  }
  for (const node of nodes) out.push(node);

  for (const q of fleet.queues) {
    out.push({ apiVersion: API_VERSION, kind: 'Queue', metadata: { name: q.name, labels: { ...baseLabels } }, spec: structuredClone(q.spec) });
  }
  return out;
}

function layoutFor(layouts: Map<string, TemplateLayout>, template: string, fleet: Fleet, leafName: string): TemplateLayout {
  const layout = layouts.get(template);
  if (!layout) throw new FleetError(fleet.source, [{ field: `fabric (leaf ${leafName})`, message: `template "${template}" is not declared in nodeTemplates` }]);
  return layout;
}

function layoutOf(t: FleetNodeTemplate, cls: AcceleratorClassSpec, baseLabels: Record<string, string>): TemplateLayout {
  const numaOf: number[] = [];
  const islandOf: number[] = [];
  const numaDevices: number[][] = Array.from({ length: t.numaNodes }, () => []);
  const islandCount = t.nvlinkIslandSize > 0 ? t.gpus / t.nvlinkIslandSize : 0;
  const islandDevices: number[][] = Array.from({ length: islandCount }, () => []);
  for (let i = 0; i < t.gpus; i++) {
    // GPUs spread evenly over NUMA nodes in index order: with 2, the first half is on NUMA 0.
    const numa = Math.floor((i * t.numaNodes) / t.gpus);
    numaOf.push(numa);
    numaDevices[numa]!.push(i);
    if (islandCount > 0) {
      const island = Math.floor(i / t.nvlinkIslandSize);
      islandOf.push(island);
      islandDevices[island]!.push(i);
    }
  }
  const peersOf = Array.from({ length: t.gpus }, (_, i) => (islandCount > 0 ? islandDevices[islandOf[i]!]!.filter((j) => j !== i) : []));
  const linked = cls.interconnect && (cls.interconnect.type === 'nvlink' || cls.interconnect.type === 'nvswitch') ? cls.interconnect : undefined;
  return {
    template: t,
    cls,
    numaOf,
    islandOf,
    peersOf,
    numaDevices,
    islandDevices,
    attributes: {
      fp8: String(cls.fp8 ?? false),
      bf16: String(cls.bf16 ?? false),
      brand: BRANDS[cls.vendor] ?? cls.vendor,
    },
    nodeLabels: { ...baseLabels, ...t.labels, [LABEL_SIMULATED]: 'true' },
    islandInterconnect: linked ? { type: linked.type as 'nvlink' | 'nvswitch', bandwidth: linked.bandwidth } : { type: 'nvlink' },
  };
}

/** One TopologyDomain object, every GPU in it free; the agent's discovery builds its in-node domains with it too. */
export function domain(name: string, labels: Record<string, string>, spec: TopologyDomainSpec, nodes: number, gpus: number): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'TopologyDomain',
    metadata: { name, labels: { ...labels } },
    spec,
    status: { nodes, gpus, freeGpus: gpus },
  };
}

function copyInterconnect(i: FleetInterconnect | undefined): { interconnect?: FleetInterconnect } {
  return i === undefined ? {} : { interconnect: { ...i } };
}

function pushNodeDomains(out: KubeObject[], nodeName: string, leafName: string, layout: TemplateLayout, labels: Record<string, string>): void {
  const gpus = layout.template.gpus;
  const all: number[] = [];
  for (let i = 0; i < gpus; i++) all.push(i);
  out.push(domain(nodeName, labels, { level: 'node', parent: leafName, nodeName, devices: all }, 1, gpus));
  layout.numaDevices.forEach((devices, k) => {
    out.push(domain(`${nodeName}-numa${k}`, labels, { level: 'numa', parent: nodeName, nodeName, devices: devices.slice(), interconnect: { type: 'pcie' } }, 1, devices.length));
  });
  layout.islandDevices.forEach((devices, k) => {
    // An island may span NUMA nodes (an 8-GPU NVSwitch board spans both sockets), so its parent is the node.
    out.push(domain(`${nodeName}-nvl${k}`, labels, { level: 'nvlink-island', parent: nodeName, nodeName, devices: devices.slice(), interconnect: { ...layout.islandInterconnect! } }, 1, devices.length));
  });
}

function makeNode(name: string, fleet: Fleet, topologyPath: string[], layout: TemplateLayout, topologyLabels: Record<string, string>): KubeObject {
  const t = layout.template;
  const cls = layout.cls;
  const gpus: NodeGpu[] = new Array(t.gpus);
  for (let i = 0; i < t.gpus; i++) {
    // Fields in the schema's order, optional ones only when known.
    const gpu = { index: i, uuid: gpuUuid(name, i), productName: cls.productName, architecture: cls.architecture, memory: cls.memory, reservedMemory: t.reservedGpuMemory } as NodeGpu;
    if (cls.computeCapability !== undefined) gpu.computeCapability = cls.computeCapability;
    if (t.driverVersion !== undefined) gpu.driverVersion = t.driverVersion;
    gpu.acceleratorClassName = t.acceleratorClassName;
    gpu.numaNode = layout.numaOf[i]!;
    if (layout.islandDevices.length > 0) gpu.nvlinkIsland = layout.islandOf[i]!;
    gpu.nvlinkPeers = layout.peersOf[i]!.slice();
    gpu.migEnabled = false;
    gpu.attributes = { ...layout.attributes };
    gpus[i] = gpu;
  }
  const spec: NodeSpec = { unschedulable: false, topologyDomain: topologyPath[2]! };
  const nodeInfo: NonNullable<NodeStatus['nodeInfo']> = { simulated: true };
  if (t.driverVersion !== undefined) nodeInfo.driverVersion = t.driverVersion;
  if (t.cudaVersion !== undefined) nodeInfo.cudaVersion = t.cudaVersion;
  if (t.operatingSystem !== undefined) nodeInfo.operatingSystem = t.operatingSystem;
  const status: NodeStatus = {
    addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: name }],
    capacity: t.nvme === undefined ? { cpu: t.cpu, memory: t.memory } : { cpu: t.cpu, memory: t.memory, nvme: t.nvme },
    gpus,
    freeGpus: t.gpus,
    topologyPath: topologyPath.slice(),
    nodeInfo,
    conditions: [{
      type: 'Ready',
      status: 'True',
      reason: 'SimulatedNodeReady',
      message: `Declared by fleet "${fleet.name}"; its devices are simulated and its Tasks run as local processes.`,
    }],
  };
  return {
    apiVersion: API_VERSION,
    kind: 'Node',
    metadata: { name, labels: { ...layout.nodeLabels, ...topologyLabels, [LABEL_ACCELERATOR]: t.acceleratorClassName } },
    spec,
    status,
  };
}
