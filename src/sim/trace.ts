// The openb traces (Alibaba GPU cluster, 2023) as simulator inputs. The FGD paper's procedure
// ignores the pods' times (it resamples and places them one by one, arrivals only: that is
// `bench placement`); the simulator replays them on the clock instead: a pod arrives at its
// creation_time and, once placed, runs for deletion_time − scheduled_time (creation_time when
// it was never scheduled in the trace). Pods without a deletion_time run to the end; pods of
// lists without times (openb_pod_list_multigpu*.csv) all arrive at 0, in file order.
import { basename } from 'node:path';
import { loadOpenbNodes, loadOpenbPods, openbPodToGang, type OpenbPod } from './openb.ts';
import type { SimCluster } from './cluster.ts';
import type { SimJob } from './workload.ts';

export function clusterFromOpenb(nodesCsv: string): SimCluster {
  const nodes = loadOpenbNodes(nodesCsv);
  const classes = new Set(nodes.flatMap((n) => n.devices.map((d) => d.className)));
  return { name: basename(nodesCsv), domains: [], nodes, classes: [...classes].sort() };
}

export function openbJob(pod: OpenbPod, seq: number): SimJob {
  const arrival = pod.creationTime ?? 0;
  const gang = openbPodToGang(pod, seq);
  // Queue order: by creation time; without times, by position in the file.
  gang.createdAt = pod.creationTime !== undefined ? Math.round(arrival * 1000) : seq;
  const job: SimJob = { gang, arrival };
  if (pod.deletionTime !== undefined) {
    const started = pod.scheduledTime !== undefined && pod.scheduledTime >= arrival ? pod.scheduledTime : arrival;
    job.duration = Math.max(0, pod.deletionTime - started);
  }
  return job;
}

export function openbJobs(podsCsv: string): SimJob[] {
  return loadOpenbPods(podsCsv).map(openbJob);
}
