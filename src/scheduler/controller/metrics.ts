// The scheduler's Prometheus metrics, named after kube-scheduler's
// (scheduler_schedule_attempts_total, scheduler_scheduling_attempt_duration_seconds,
// scheduler_pending_pods) under the k8s4ai_ prefix, plus GPUs by class and state.
import { Counter, Gauge, Histogram, exponentialBuckets, type Registry as MetricsRegistry } from 'prom-client';
import type { ClusterCache } from '../cache/cluster.ts';

export type AttemptResult = 'scheduled' | 'unschedulable' | 'error';

export interface SchedulerMetrics {
  /** Counts one attempt (algorithm and binding) and observes how long it took. */
  attempt(result: AttemptResult, seconds: number): void;
}

export function schedulerMetrics(registry: MetricsRegistry, profile: string, cache: ClusterCache, pending: () => number): SchedulerMetrics {
  const attempts = new Counter({
    name: 'k8s4ai_scheduler_schedule_attempts_total',
    help: 'Number of attempts to schedule gangs, by the result: scheduled, unschedulable (fits nowhere) or error (failed to bind).',
    labelNames: ['result', 'profile'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'k8s4ai_scheduler_scheduling_attempt_duration_seconds',
    help: 'Gang scheduling attempt latency in seconds (placement algorithm and binding).',
    labelNames: ['result', 'profile'] as const,
    buckets: exponentialBuckets(0.001, 2, 15),
    registers: [registry],
  });
  new Gauge({
    name: 'k8s4ai_scheduler_pending_gangs',
    help: 'Gangs waiting to be placed (active, backing off after a failed binding, or unschedulable).',
    registers: [registry],
    collect() {
      this.set(pending());
    },
  });
  new Gauge({
    name: 'k8s4ai_scheduler_gpus',
    help: 'GPUs by accelerator class and state: free (wholly free) or allocated (held whole, shared or as MIG instances).',
    labelNames: ['class', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [cls, c] of cache.totals().byClass) {
        this.set({ class: cls, state: 'free' }, c.free);
        this.set({ class: cls, state: 'allocated' }, c.gpus - c.free);
      }
    },
  });
  for (const result of ['scheduled', 'unschedulable', 'error'] as const) attempts.inc({ result, profile }, 0);
  return {
    attempt(result, seconds) {
      attempts.inc({ result, profile });
      duration.observe({ result, profile }, seconds);
    },
  };
}
