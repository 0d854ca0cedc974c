// Fleet files: declare a (simulated) cluster once, expand it into k8s4ai objects.
//   loadFleet / parseFleet  file or text → Fleet (errors name the file, field and line)
//   expandFleet             Fleet → AcceleratorClasses, TopologyDomains, Nodes, Queues
//   summarizeFleet          objects → node, GPU and leaf counts
import { fileURLToPath } from 'node:url';

export { loadFleet, parseFleet } from './parse.ts';
export { expandFleet, type ExpandOptions } from './expand.ts';
export { summarizeFleet, type FleetSummary } from './summary.ts';
export { gpuUuid, GPU_UUID_PATTERN } from './uuid.ts';
export {
  FleetError, FleetFileDefinition, FLEET_API_VERSION, FLEET_KIND,
  LABEL_FLEET, LABEL_SIMULATED, LABEL_FABRIC, LABEL_SPINE, LABEL_LEAF, LABEL_ACCELERATOR,
  type Fleet, type FleetIssue, type FleetAcceleratorClass, type FleetNodeTemplate, type FleetFabric,
  type FleetSpine, type FleetLeaf, type FleetQueue, type FleetInterconnect,
} from './format.ts';

/** The demo fleet `k8s4ai up` registers: 40 nodes, 304 GPUs (H100, A100, L4). */
export const FLEET_DEMO_PATH: string = fileURLToPath(new URL('../../fleet/demo.yaml', import.meta.url));
/** A two-leaf, 32-GPU fleet for tests and docs. */
export const FLEET_SMALL_PATH: string = fileURLToPath(new URL('../../fleet/small.yaml', import.meta.url));
