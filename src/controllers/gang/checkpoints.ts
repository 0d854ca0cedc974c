// What the gang controller decides about checkpoints, as pure functions of the objects:
// the interval in use (fixed, or Young/Daly from the failures observed on the gang's nodes
// and the measured checkpoint cost) and whether a requested checkpoint is complete.
import type { KubeObject } from '../../api/meta.ts';
import type { CheckpointPolicySpec } from '../../api/kinds/checkpointpolicy.ts';
import type { CompleteCheckpoint } from '../../api/kinds/gangschedulinggroup.ts';
import type { NodeStatus } from '../../api/kinds/node.ts';
import type { MemberCheckpoint } from '../../api/kinds/workload.ts';
import { parseDuration, formatDuration } from '../../api/duration.ts';
import { optimalInterval, mtbfFromRate } from '../../checkpoint/interval.ts';
import { memberOfTask } from '../../checkpoint/protocol.ts';

/** Failures per GPU-hour Meta reported for Llama 3 (419 unexpected in 54 days on 16,384 GPUs). */
export const DEFAULT_FAILURES_PER_GPU_HOUR = 419 / (16_384 * 54 * 24);

/** Bounds on an `auto` interval: never a checkpoint storm, never a day of work at risk. */
export const AUTO_MIN_SECONDS = 10;
export const AUTO_MAX_SECONDS = 24 * 3600;

/** Until a checkpoint has been measured, the first one comes this soon (or at M/10), to measure it. */
export const FIRST_MEASUREMENT_SECONDS = 60;

export interface IntervalDecision {
  seconds: number;
  reason: string;
  mtbfSeconds?: number;
  checkpointSeconds?: number;
}

export interface IntervalInputs {
  policy: CheckpointPolicySpec;
  /** The policy's measured checkpoint cost (its status), used when the gang has none. */
  policyMeasuredSeconds?: number;
  /** The gang's own last complete checkpoint. */
  lastCheckpoint?: CompleteCheckpoint;
  /** The Nodes the gang runs on. */
  nodes: KubeObject[];
  gpus: number;
  now: Date;
}

/**
 * Mean time between failures of the gang: failures pooled over its nodes (each node's
 * count since it registered), M = 1 / Σ rate. With none observed, the policy's hint, or
 * the Llama 3 rate per GPU-hour times the gang's GPUs.
 */
export function gangMtbf(policy: CheckpointPolicySpec, nodes: KubeObject[], gpus: number, now: Date): { seconds: number; why: string } {
  let failures = 0;
  let rate = 0;
  for (const n of nodes) {
    const st = (n.status ?? {}) as NodeStatus;
    const f = st.failures ?? 0;
    if (!f) continue;
    const since = Date.parse(String(n.metadata.creationTimestamp ?? '')) || now.getTime();
    const hours = Math.max((now.getTime() - since) / 3_600_000, 1 / 60);
    failures += f;
    rate += f / hours;
  }
  if (failures > 0) {
    return { seconds: 3600 / rate, why: `${failures} failure${failures === 1 ? '' : 's'} observed on its ${nodes.length} node${nodes.length === 1 ? '' : 's'}` };
  }
  if (policy.mtbfHint) return { seconds: parseDuration(policy.mtbfHint), why: 'mtbfHint (no failures observed yet)' };
  // Shared GPUs count as whole ones here: a fractional member still fails with its device.
  const g = Math.max(Math.ceil(gpus), 1);
  return { seconds: mtbfFromRate(DEFAULT_FAILURES_PER_GPU_HOUR, g), why: `no failures observed; assumed ${DEFAULT_FAILURES_PER_GPU_HOUR.toExponential(2)} failures per GPU-hour × ${g} GPU${g === 1 ? '' : 's'}` };
}

export function checkpointInterval(inputs: IntervalInputs): IntervalDecision {
  const { policy } = inputs;
  if (policy.interval !== 'auto') {
    return { seconds: parseDuration(policy.interval), reason: `fixed interval ${policy.interval}` };
  }
  const delta = inputs.lastCheckpoint?.durationSeconds ?? inputs.policyMeasuredSeconds;
  const mtbf = gangMtbf(policy, inputs.nodes, inputs.gpus, inputs.now);
  if (delta === undefined) {
    const first = Math.max(AUTO_MIN_SECONDS, Math.min(FIRST_MEASUREMENT_SECONDS, mtbf.seconds / 10));
    return { seconds: first, reason: `auto: no checkpoint measured yet; the first comes after ${formatDuration(first)} to measure its cost (M=${formatDuration(mtbf.seconds)}: ${mtbf.why})`, mtbfSeconds: mtbf.seconds };
  }
  // A checkpoint measured at 0 s (tiny state) still costs something; Young/Daly needs δ > 0.
  const checkpointSeconds = Math.max(delta, 0.001);
  const best = optimalInterval({ checkpointSeconds, mtbfSeconds: mtbf.seconds, minSeconds: AUTO_MIN_SECONDS, maxSeconds: AUTO_MAX_SECONDS });
  return { seconds: best.seconds, reason: `auto: ${best.reason} (M: ${mtbf.why})`, mtbfSeconds: mtbf.seconds, checkpointSeconds };
}

/** A member's report of one checkpoint, with the member it belongs to. */
interface MemberReport {
  member: string;
  task: KubeObject;
  report?: MemberCheckpoint;
}

export type Completion =
  | { state: 'waiting'; missing: string[] }
  | { state: 'complete'; checkpoint: CompleteCheckpoint }
  | { state: 'inconsistent'; message: string };

/**
 * Whether checkpoint `id`, requested at `requestedAt`, is complete: every member of the
 * attempt reported it, all at the same step.
 */
export function checkpointCompletion(gangName: string, id: string, requestedAt: Date, tasks: KubeObject[]): Completion {
  const reports: MemberReport[] = tasks.map((task) => ({
    member: memberOfTask(task.metadata.name, gangName),
    task,
    report: ((task.status as { checkpoints?: MemberCheckpoint[] } | undefined)?.checkpoints ?? []).find((c) => c.id === id),
  }));
  const missing = reports.filter((r) => !r.report).map((r) => r.member);
  if (missing.length || !reports.length) return { state: 'waiting', missing };
  const steps = new Set(reports.map((r) => r.report!.step));
  if (steps.size > 1) {
    return { state: 'inconsistent', message: `checkpoint ${id} was written at different steps (${reports.map((r) => `${r.member}: ${r.report!.step}`).join(', ')}); not used` };
  }
  const finished = Math.max(...reports.map((r) => Date.parse(r.report!.time) || requestedAt.getTime()));
  const sorted = [...reports].sort((a, b) => a.member.localeCompare(b.member, 'en', { numeric: true }));
  return {
    state: 'complete',
    checkpoint: {
      id,
      step: reports[0]!.report!.step,
      time: new Date(finished).toISOString(),
      durationSeconds: Math.max(0, (finished - requestedAt.getTime()) / 1000),
      sizeBytes: reports.reduce((s, r) => s + r.report!.sizeBytes, 0),
      nodes: [...new Set(sorted.map((r) => r.report!.node))],
      locations: sorted.map((r) => ({ member: r.member, node: r.report!.node, path: r.report!.path })),
    },
  };
}
