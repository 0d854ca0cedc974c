// The trace simulator: `k8s4ai sim`, and the engine behind the topology and scale benchmarks.
export { simulate, Simulator, gangGpuEquivalents, type SimOptions, type SimResult, type SimSummary, type GangOutcome, type TimelinePoint, type TopologySummary } from './engine.ts';
export { buildCache, clusterFromFleet, clusterFromObjects, clusterGpus, type SimCluster } from './cluster.ts';
export { loadWorkload, parseWorkload, manifestGangs, sortJobs, SimWorkloadError, ANNOTATION_ARRIVAL, ANNOTATION_DURATION, ANNOTATION_REPEAT, ANNOTATION_EVERY, type SimJob, type ManifestWorkload } from './workload.ts';
export { clusterFragmentation, workloadShapes, type TaskShape, type Fragmentation } from './fragmentation.ts';
export { lowestFeasibleLevel, judgedForTopology, spanOf } from './topology.ts';
export { renderSummary, simReport } from './report.ts';
export { clusterFromOpenb, openbJob, openbJobs } from './trace.ts';
