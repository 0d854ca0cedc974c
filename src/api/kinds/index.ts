// The one registry of kinds the server serves, in discovery order.
import type { KindDefinition } from '../kind.ts';
import { AcceleratorClass } from './acceleratorclass.ts';
import { TopologyDomain } from './topologydomain.ts';
import { VRAMPool } from './vrampool.ts';
import { CheckpointPolicy } from './checkpointpolicy.ts';
import { ContentRouter } from './contentrouter.ts';
import { GangSchedulingGroup } from './gangschedulinggroup.ts';
import { Node } from './node.ts';
import { Queue } from './queue.ts';
import { InferenceService } from './inferenceservice.ts';
import { Task } from './task.ts';
import { Namespace, Event } from './core.ts';

export const K8S4AI_KINDS: readonly KindDefinition[] = [
  AcceleratorClass, TopologyDomain, VRAMPool, CheckpointPolicy, ContentRouter,
  GangSchedulingGroup, Node, Queue, InferenceService, Task,
];
export const CORE_KINDS: readonly KindDefinition[] = [Namespace, Event];
export const ALL_KINDS: readonly KindDefinition[] = [...CORE_KINDS, ...K8S4AI_KINDS];

export {
  AcceleratorClass, TopologyDomain, VRAMPool, CheckpointPolicy, ContentRouter,
  GangSchedulingGroup, Node, Queue, InferenceService, Task, Namespace, Event,
};
