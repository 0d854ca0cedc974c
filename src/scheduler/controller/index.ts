// The scheduler as a control-plane controller: informers into the cluster cache, the
// pending-gang queue, atomic gang binding, explanations, capacity status and metrics.
export { SchedulerController, SCHEDULER_COMPONENT, type SchedulerOptions } from './controller.ts';
export { SchedulingQueue, type QueuedGang, type QueueState } from './queue.ts';
export { LABEL_GANG, LABEL_ROLE, CONDITION_SCHEDULED, deviceAssignment, deviceGrant, isPendingGang, memberTasks, placementOfTask, taskHolding } from './binding.ts';
export { LABEL_SERVICE, LABEL_REPLICA } from './controller.ts';
export { VRAMPoolBinder, CONDITION_BOUND, poolRequest } from './vrampools.ts';
