// Reading totals back from expanded objects (or from any list of Nodes and TopologyDomains).
import type { KubeObject } from '../api/meta.ts';
import type { NodeStatus } from '../api/kinds/node.ts';
import type { TopologyDomainSpec } from '../api/kinds/topologydomain.ts';

export interface FleetSummary {
  /** Node objects. */
  nodes: number;
  /** GPUs over all Nodes. */
  gpus: number;
  /** GPUs per accelerator class (the product name where a GPU names no class), in first-seen order. */
  byClass: Record<string, number>;
  /** TopologyDomains of level leaf. */
  leaves: number;
}

export function summarizeFleet(objects: readonly KubeObject[]): FleetSummary {
  const summary: FleetSummary = { nodes: 0, gpus: 0, byClass: {}, leaves: 0 };
  for (const obj of objects) {
    if (obj.kind === 'Node') {
      summary.nodes++;
      for (const gpu of (obj.status as NodeStatus | undefined)?.gpus ?? []) {
        summary.gpus++;
        const key = gpu.acceleratorClassName ?? gpu.productName;
        summary.byClass[key] = (summary.byClass[key] ?? 0) + 1;
      }
    } else if (obj.kind === 'TopologyDomain' && (obj.spec as TopologyDomainSpec | undefined)?.level === 'leaf') {
      summary.leaves++;
    }
  }
  return summary;
}
