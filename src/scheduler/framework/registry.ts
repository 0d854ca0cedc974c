// The one registry of plugins: name -> factory. Profiles name plugins from here.
import type { AnyPlugin } from './types.ts';
import * as PrioritySort from '../plugins/prioritysort/index.ts';
import * as ClusterCapacity from '../plugins/capacity/index.ts';
import * as NodeReady from '../plugins/nodeready/index.ts';
import * as NodeResourcesFit from '../plugins/noderesources/index.ts';
import * as AcceleratorMatch from '../plugins/accelerator/index.ts';
import * as NodeSelector from '../plugins/nodeselector/index.ts';
import * as DeviceAllocator from '../plugins/devices/index.ts';
import * as BinPack from '../plugins/binpack/index.ts';
import * as TopologyPack from '../plugins/topology/index.ts';
import * as WarmWeights from '../plugins/warmstate/index.ts';
import * as ShareFit from '../plugins/sharefit/index.ts';
import * as GangPermit from '../plugins/gangpermit/index.ts';
import * as RandomScore from '../plugins/random/index.ts';
import * as DotProduct from '../plugins/dotprod/index.ts';
import * as GpuClustering from '../plugins/gpuclustering/index.ts';
import * as GpuPacking from '../plugins/gpupacking/index.ts';
import * as BestFit from '../plugins/bestfit/index.ts';
import * as FGD from '../plugins/fgd/index.ts';
import * as Fragmentation from '../plugins/fragmentation/index.ts';
import * as LeastAllocated from '../plugins/spread/index.ts';
import * as CheckpointLocality from '../plugins/checkpointlocality/index.ts';

export type PluginArgs = Record<string, unknown> & {
  /** Seed for plugins that draw random numbers (Random), so runs repeat. */
  seed?: number;
};

export type PluginFactory = (args: PluginArgs) => AnyPlugin;

export const PLUGINS: ReadonlyMap<string, PluginFactory> = new Map<string, PluginFactory>([
  [PrioritySort.Name, PrioritySort.create],
  [ClusterCapacity.Name, ClusterCapacity.create],
  [NodeReady.Name, NodeReady.create],
  [NodeResourcesFit.Name, NodeResourcesFit.create],
  [AcceleratorMatch.Name, AcceleratorMatch.create],
  [NodeSelector.Name, NodeSelector.create],
  [DeviceAllocator.Name, DeviceAllocator.create],
  [BinPack.Name, BinPack.create],
  [TopologyPack.Name, TopologyPack.create],
  [WarmWeights.Name, WarmWeights.create],
  [ShareFit.Name, ShareFit.create],
  [GangPermit.Name, GangPermit.create],
  [CheckpointLocality.Name, CheckpointLocality.create],
  // The FGD paper's placement baselines (bench placement) and k8s4ai's fragmentation score.
  [RandomScore.Name, RandomScore.create],
  [DotProduct.Name, DotProduct.create],
  [GpuClustering.Name, GpuClustering.create],
  [GpuPacking.Name, GpuPacking.create],
  [BestFit.Name, BestFit.create],
  [FGD.Name, FGD.create],
  [Fragmentation.Name, Fragmentation.create],
  // kube-scheduler's LeastAllocated scoring: the topology-blind `spread` baseline (bench topology).
  [LeastAllocated.Name, LeastAllocated.create],
]);
