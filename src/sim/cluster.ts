// The simulated cluster: the cluster cache's inputs (domains and nodes), from a fleet file
// (the one `k8s4ai up` registers), from API objects, or from a trace's node list. The
// simulator builds a fresh ClusterCache from them for every run, exactly as the control
// plane builds its cache from watched Nodes and TopologyDomains (same translation).
import type { KubeObject } from '../api/meta.ts';
import type { AcceleratorClassSpec } from '../api/kinds/acceleratorclass.ts';
import { ClusterCache, type DomainInput, type NodeInput } from '../scheduler/cache/cluster.ts';
import { domainInput, nodeInput } from '../scheduler/objects.ts';
import { expandFleet, loadFleet } from '../fleet/index.ts';

export interface SimCluster {
  /** For reports: the fleet's name or the trace file's. */
  name: string;
  domains: DomainInput[];
  nodes: NodeInput[];
  /** Accelerator class names present. */
  classes: string[];
}

/** Fabric/spine/leaf domains and Nodes from API objects (AcceleratorClasses give device attributes). */
export function clusterFromObjects(name: string, objects: readonly KubeObject[]): SimCluster {
  const classes = new Map<string, AcceleratorClassSpec>();
  for (const o of objects) if (o.kind === 'AcceleratorClass') classes.set(o.metadata.name, o.spec as AcceleratorClassSpec);
  const domains: DomainInput[] = [];
  const nodes: NodeInput[] = [];
  for (const o of objects) {
    if (o.kind === 'TopologyDomain') {
      const d = domainInput(o);
      if (d) domains.push(d);
    } else if (o.kind === 'Node') {
      nodes.push(nodeInput(o, classes));
    }
  }
  const present = new Set(nodes.flatMap((n) => n.devices.map((d) => d.className)));
  return { name, domains, nodes, classes: [...present].sort() };
}

/** A fleet file, expanded as `k8s4ai up` expands it (in-node domains are read from the GPUs). */
export function clusterFromFleet(path: string): SimCluster {
  const fleet = loadFleet(path);
  return clusterFromObjects(fleet.name, expandFleet(fleet, { inNodeDomains: false }));
}

/** A fresh cache holding the cluster, everything free. */
export function buildCache(cluster: SimCluster): ClusterCache {
  const cache = new ClusterCache();
  // Parents before children, so each domain attaches to the parent declared for it.
  const rank = { fabric: 0, spine: 1, leaf: 2 } as Record<string, number>;
  for (const d of [...cluster.domains].sort((a, b) => (rank[a.level] ?? 3) - (rank[b.level] ?? 3))) cache.setDomain(d);
  for (const n of cluster.nodes) cache.upsertNode(n);
  return cache;
}

/** Whole GPUs in the cluster. */
export const clusterGpus = (cluster: SimCluster): number => cluster.nodes.reduce((s, n) => s + n.devices.length, 0);
