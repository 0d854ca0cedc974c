// A gang's lifecycle as one pure function of its objects: given the gang, its Tasks, its
// CheckpointPolicy and its Nodes at a moment, what the gang's status should become, which
// Tasks to stop (delete: their agents stop the processes), what to tell people, and when
// to look again. The controller (controller.ts) only reads objects and applies this.
//
//   Pending ──scheduler──▶ Scheduled ──all running──▶ Running ──all succeeded──▶ Succeeded
//                              │                        │
//                              └── a member failed ─────┴──▶ Restarting ──tasks gone, backoff──▶ Pending
//                                  (permanent, or out of restarts) ──▶ Failed
//
// A restart is whole-gang: every member of the attempt stops and the next attempt resumes
// from the latest complete checkpoint (the agent hands it to each member). A preemption
// notice asks for a just-in-time checkpoint, then stops the gang cleanly and queues it
// again, counted apart from failures.
import type { KubeObject, Condition } from '../../api/meta.ts';
import { setCondition } from '../../api/meta.ts';
import { parseDuration, formatDuration } from '../../api/duration.ts';
import type { CheckpointPolicySpec } from '../../api/kinds/checkpointpolicy.ts';
import { gangGpus, type GangSchedulingGroupSpec, type CompleteCheckpoint } from '../../api/kinds/gangschedulinggroup.ts';
import { FAILED_TASK_PHASES, FINISHED_TASK_PHASES, type TaskSpec } from '../../api/kinds/task.ts';
import { gangAttempt, CONDITION_SCHEDULED } from '../../scheduler/controller/binding.ts';
import { checkpointCompletion, checkpointInterval } from './checkpoints.ts';

export const CONDITION_PREEMPTION = 'PreemptionNotice';


/** How long after a member's failure the gang waits for its peers' reports before acting. */
export const FAILURE_SETTLE_MS = 1500;

/** A member whose bound Task vanished is counted as failed once this long has passed. */
export const MISSING_TASK_GRACE_MS = 15_000;

/** Without a CheckpointPolicy a gang does not restart unless it says how often it may. */
const DEFAULT_MAX_RESTARTS_WITHOUT_POLICY = 0;
const DEFAULT_MAX_RESTARTS = 10;
const DEFAULT_BACKOFF_INITIAL = '10s';
const DEFAULT_BACKOFF_MAX = '5m';
const DEFAULT_CHECKPOINT_TIMEOUT = '10m';
const DEFAULT_PREEMPTION_GRACE = '60s';

export interface GangStatus {
  phase?: string;
  conditions?: Condition[];
  restarts?: number;
  preemptions?: number;
  placements?: { taskName: string; nodeName: string }[];
  scheduledTime?: string;
  startTime?: string;
  completionTime?: string;
  attemptStartTime?: string;
  lastCheckpoint?: CompleteCheckpoint;
  checkpoints?: CompleteCheckpoint[];
  checkpointRequest?: { id: string; time: string; reason: 'Interval' | 'Preemption' };
  checkpointSeq?: number;
  checkpointAttemptTime?: string;
  checkpointInterval?: { seconds: number; reason: string };
  lastFailure?: { taskName: string; nodeName?: string; reason: string; message?: string; exitCode?: number; time: string; permanent?: boolean };
  nextRestartTime?: string;
  [field: string]: unknown;
}

interface TaskStatusShape {
  phase?: string;
  exitCode?: number;
  signal?: string;
  reason?: string;
  message?: string;
}

export interface GangView {
  gang: KubeObject;
  /** Every Task of the gang, of any attempt. */
  tasks: KubeObject[];
  policy?: { spec: CheckpointPolicySpec; measuredSeconds?: number };
  /** Nodes by name (for the interval's MTBF). */
  nodes: Map<string, KubeObject>;
  now: Date;
}

export interface GangEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface GangDecision {
  /** The status to write, when it changes. */
  status?: GangStatus;
  /** Tasks to delete (stop). */
  stop: KubeObject[];
  events: GangEvent[];
  /** Look again at this time (ms since epoch), even if nothing changes. */
  wakeAt?: number;
  /** A checkpoint completed: the policy's measured cost. */
  measuredCheckpointSeconds?: number;
  /** The interval decision, for the policy's status. */
  interval?: { seconds: number; reason: string; mtbfSeconds?: number };
}

const taskStatus = (t: KubeObject) => (t.status ?? {}) as TaskStatusShape;
const taskSpec = (t: KubeObject) => t.spec as TaskSpec;
const isDeleting = (t: KubeObject) => Boolean(t.metadata.deletionTimestamp);

/** The restart limit: the gang's own, else its policy's, else none without a policy. */
export function maxRestartsOf(spec: GangSchedulingGroupSpec, policy?: CheckpointPolicySpec): number {
  return spec.maxRestarts ?? (policy ? (policy.restore?.maxRestarts ?? DEFAULT_MAX_RESTARTS) : DEFAULT_MAX_RESTARTS_WITHOUT_POLICY);
}

/** Exponential backoff before restart number `restart` (1-based), capped. */
export function restartBackoffSeconds(policy: CheckpointPolicySpec | undefined, restart: number): number {
  const initial = parseDuration(policy?.restore?.backoff?.initial ?? DEFAULT_BACKOFF_INITIAL);
  const max = parseDuration(policy?.restore?.backoff?.max ?? DEFAULT_BACKOFF_MAX);
  return Math.min(max, initial * 2 ** Math.max(0, restart - 1));
}

/** How a failed member failed, for people: "exited with code 3", "killed by SIGKILL", "node lost". */
export function describeFailure(t: KubeObject): string {
  const st = taskStatus(t);
  const where = taskSpec(t).nodeName ? ` on node ${taskSpec(t).nodeName}` : '';
  if (st.reason === 'NodeLost') return `was lost with its node${where}`;
  if (st.phase === 'Lost') return `was lost${where}${st.message ? ` (${st.message})` : ''}`;
  if (st.signal) return `was killed by ${st.signal}${where}`;
  if (st.exitCode !== undefined) return `exited with code ${st.exitCode}${where}`;
  return `failed${where}${st.message ? `: ${st.message}` : ''}`;
}

export function reconcileGang(view: GangView): GangDecision {
  const { gang, now } = view;
  const decision: GangDecision = { stop: [], events: [] };
  if (gang.metadata.deletionTimestamp) return decision;
  const status: GangStatus = { ...((gang.status ?? {}) as GangStatus) };
  const phase = status.phase ?? 'Pending';
  const attempt = gangAttempt(gang);
  const current = view.tasks.filter((t) => (taskSpec(t).attempt ?? 0) === attempt);
  const stale = view.tasks.filter((t) => (taskSpec(t).attempt ?? 0) !== attempt);
  const stopAll = (tasks: KubeObject[]) => decision.stop.push(...tasks.filter((t) => !isDeleting(t)));
  const policy = view.policy?.spec;
  let changed = false;
  const set = (patch: Partial<GangStatus>) => {
    Object.assign(status, patch);
    changed = true;
  };

  switch (phase) {
    case 'Pending':
      // Leftovers of an earlier attempt never run beside the next one.
      stopAll(stale);
      break;

    case 'Scheduled':
    case 'Running': {
      stopAll(stale);
      const expected = status.placements?.length ?? current.length;
      // The first to fail is the cause; the others mostly failed because it did.
      const failed = current
        .filter((t) => FAILED_TASK_PHASES.has(taskStatus(t).phase ?? ''))
        .sort((a, b) => (Date.parse((a.status as { finishTime?: string }).finishTime ?? '') || Infinity) - (Date.parse((b.status as { finishTime?: string }).finishTime ?? '') || Infinity))[0];
      const scheduledAt = Date.parse(status.scheduledTime ?? '') || now.getTime();
      const missing = current.length < expected && now.getTime() - scheduledAt >= MISSING_TASK_GRACE_MS
        ? (status.placements ?? []).find((p) => !current.some((t) => t.metadata.name === p.taskName))
        : undefined;
      if (failed && !missing) {
        // Members of a gang fail together (the others lose their peer at once): a moment's
        // wait lets their reports come in, so the cause named is the first to fail, not the
        // first whose report arrived.
        // (Only when the report says when it failed; without that there is nothing to order by.)
        const finished = Date.parse((failed.status as { finishTime?: string }).finishTime ?? '');
        const settle = finished + FAILURE_SETTLE_MS;
        const running = current.some((t) => !FINISHED_TASK_PHASES.has(taskStatus(t).phase ?? ''));
        if (finished && running && now.getTime() < settle) {
          decision.wakeAt = settle;
          break;
        }
      }
      if (failed || missing) {
        fail(view, status, set, decision, current, failed, missing);
        break;
      }
      if (current.length < expected) {
        decision.wakeAt = scheduledAt + MISSING_TASK_GRACE_MS;
        break;
      }
      if (current.length && current.every((t) => taskStatus(t).phase === 'Succeeded')) {
        set({ phase: 'Succeeded', completionTime: now.toISOString(), checkpointRequest: undefined });
        decision.events.push({ type: 'Normal', reason: 'Succeeded', message: `all ${current.length} members succeeded` });
        break;
      }
      const running = current.length > 0 && current.every((t) => ['Running', 'Succeeded'].includes(taskStatus(t).phase ?? ''));
      if (phase === 'Scheduled' && running) {
        set({ phase: 'Running', startTime: status.startTime ?? now.toISOString(), attemptStartTime: now.toISOString() });
        decision.events.push({ type: 'Normal', reason: 'Running', message: `all ${current.length} members are running${attempt ? ` (attempt ${attempt})` : ''}` });
      }
      if (status.phase !== 'Running') break;
      if (preempt(view, status, set, decision, current)) break;
      if (policy) coordinateCheckpoints(view, status, set, decision, current);
      break;
    }

    case 'Restarting': {
      // The next attempt starts only once every process of this one is gone.
      stopAll(view.tasks);
      const due = Date.parse(status.nextRestartTime ?? '') || now.getTime();
      if (view.tasks.length === 0 && now.getTime() >= due) {
        const generation = gang.metadata.generation ?? 1;
        set({
          phase: 'Pending',
          placements: undefined,
          scheduledTime: undefined,
          attemptStartTime: undefined,
          nextRestartTime: undefined,
          conditions: setCondition(status.conditions, { type: CONDITION_SCHEDULED, status: 'False', reason: 'Restarting', message: restartMessage(status), observedGeneration: generation }, now),
        });
      } else if (view.tasks.length === 0) {
        decision.wakeAt = due;
      }
      break;
    }

    case 'Failed':
      // A failed gang keeps no member running.
      stopAll(view.tasks.filter((t) => !FINISHED_TASK_PHASES.has(taskStatus(t).phase ?? '')));
      break;

    default:
      break;
  }
  if (changed) decision.status = status;
  return decision;
}

function restartMessage(status: GangStatus): string {
  const from = status.lastCheckpoint ? `from checkpoint ${status.lastCheckpoint.id} (step ${status.lastCheckpoint.step})` : 'from the start (no complete checkpoint)';
  return `waiting for a placement to resume ${from}`;
}

/** A member failed (or vanished): fail the gang, or stop every member and restart it. */
function fail(
  view: GangView, status: GangStatus, set: (p: Partial<GangStatus>) => void, decision: GangDecision,
  current: KubeObject[], failed: KubeObject | undefined, missing: { taskName: string; nodeName: string } | undefined,
): void {
  const { now } = view;
  const policy = view.policy?.spec;
  const spec = view.gang.spec as GangSchedulingGroupSpec;
  const st = failed ? taskStatus(failed) : {};
  const exitCode = st.exitCode;
  const permanent = exitCode !== undefined && !st.signal && (policy?.restore?.permanentExitCodes ?? []).includes(exitCode);
  const taskName = failed?.metadata.name ?? missing!.taskName;
  const what = failed ? `member ${taskName} ${describeFailure(failed)}` : `member ${taskName} was deleted`;
  const lastFailure = {
    taskName,
    nodeName: failed ? taskSpec(failed).nodeName : missing!.nodeName,
    reason: failed ? (st.reason ?? (st.phase === 'Lost' ? 'Lost' : 'Error')) : 'TaskDeleted',
    ...(st.message ? { message: st.message } : {}),
    ...(exitCode !== undefined ? { exitCode } : {}),
    time: now.toISOString(),
    ...(permanent ? { permanent: true } : {}),
  };
  const restarts = status.restarts ?? 0;
  const max = maxRestartsOf(spec, policy);
  if (permanent || restarts >= max) {
    // The failed records stay for people to read; the members still running stop.
    decision.stop.push(...current.filter((t) => !isDeleting(t) && !FINISHED_TASK_PHASES.has(taskStatus(t).phase ?? '')));
    const why = permanent ? `exit code ${exitCode} is permanent in the CheckpointPolicy` : `restarted ${restarts} time${restarts === 1 ? '' : 's'}, the limit`;
    set({ phase: 'Failed', completionTime: now.toISOString(), lastFailure, checkpointRequest: undefined });
    decision.events.push({ type: 'Warning', reason: 'GangFailed', message: `${what}; the gang failed (${why})` });
    return;
  }
  const backoff = restartBackoffSeconds(policy, restarts + 1);
  // A pending preemption notice is answered by this stop: the next attempt must not meet it.
  const notice = status.conditions?.find((c) => c.type === CONDITION_PREEMPTION && c.status === 'True');
  set({
    phase: 'Restarting',
    restarts: restarts + 1,
    lastFailure,
    nextRestartTime: new Date(now.getTime() + backoff * 1000).toISOString(),
    checkpointRequest: undefined,
    ...(notice ? { conditions: setCondition(status.conditions, { type: CONDITION_PREEMPTION, status: 'False', reason: 'StoppedByFailure', message: `${what} before the preemption completed; the gang restarts` }, now) } : {}),
  });
  const from = status.lastCheckpoint ? `from checkpoint ${status.lastCheckpoint.id} (step ${status.lastCheckpoint.step})` : 'from the start';
  decision.events.push({ type: 'Warning', reason: 'Restarting', message: `${what}; stopping the other members and restarting the gang ${from} in ${formatDuration(backoff)} (restart ${restarts + 1} of ${max})` });
  // Every member of the attempt goes, the failed ones' records too: the next attempt reuses their names.
  decision.stop.push(...current.filter((t) => !isDeleting(t)));
}

/**
 * A preemption notice: a just-in-time checkpoint, then a clean stop before the grace
 * period ends, and the gang goes back to the queue. True when the gang is being stopped.
 */
function preempt(view: GangView, status: GangStatus, set: (p: Partial<GangStatus>) => void, decision: GangDecision, current: KubeObject[]): boolean {
  const cond = status.conditions?.find((c) => c.type === CONDITION_PREEMPTION);
  if (cond?.status !== 'True') return false;
  const { now } = view;
  const policy = view.policy?.spec;
  const noticeAt = Date.parse(cond.lastTransitionTime ?? '') || now.getTime();
  const deadline = noticeAt + parseDuration(policy?.preemptionGracePeriod ?? DEFAULT_PREEMPTION_GRACE) * 1000;
  const saved = status.lastCheckpoint && Date.parse(status.lastCheckpoint.time) >= noticeAt ? status.lastCheckpoint : undefined;
  if (policy && !saved && now.getTime() < deadline) {
    if (!status.checkpointRequest) requestCheckpoint(status, set, 'Preemption', now);
    else trackRequest(view, status, set, decision, current);
    // trackRequest may just have completed it: then stop now.
    const done = status.lastCheckpoint && Date.parse(status.lastCheckpoint.time) >= noticeAt;
    if (!done) {
      decision.wakeAt = Math.min(decision.wakeAt ?? Infinity, deadline);
      return false;
    }
  }
  const checkpoint = status.lastCheckpoint && Date.parse(status.lastCheckpoint.time) >= noticeAt ? status.lastCheckpoint : undefined;
  const message = checkpoint
    ? `stopped after a just-in-time checkpoint ${checkpoint.id} (step ${checkpoint.step}); queued again`
    : policy ? 'the grace period ended before a checkpoint completed; stopped and queued again' : 'stopped (no CheckpointPolicy) and queued again';
  set({
    phase: 'Restarting',
    preemptions: (status.preemptions ?? 0) + 1,
    nextRestartTime: now.toISOString(),
    checkpointRequest: undefined,
    conditions: setCondition(status.conditions, { type: CONDITION_PREEMPTION, status: 'False', reason: 'Preempted', message }, now),
  });
  decision.stop.push(...current.filter((t) => !isDeleting(t)));
  decision.events.push({ type: 'Normal', reason: 'Preempted', message });
  return true;
}

function requestCheckpoint(status: GangStatus, set: (p: Partial<GangStatus>) => void, reason: 'Interval' | 'Preemption', now: Date): void {
  const seq = (status.checkpointSeq ?? 0) + 1;
  set({
    checkpointSeq: seq,
    checkpointRequest: { id: `ckpt-${String(seq).padStart(6, '0')}`, time: now.toISOString(), reason },
    checkpointAttemptTime: now.toISOString(),
  });
}

/** A pending request: complete, inconsistent, timed out, or still waiting. */
function trackRequest(view: GangView, status: GangStatus, set: (p: Partial<GangStatus>) => void, decision: GangDecision, current: KubeObject[]): void {
  const req = status.checkpointRequest!;
  const policy = view.policy!.spec;
  const requestedAt = new Date(req.time);
  const result = checkpointCompletion(view.gang.metadata.name, req.id, requestedAt, current);
  if (result.state === 'complete') {
    const keep = policy.keepLast ?? 3;
    const c = result.checkpoint;
    set({ lastCheckpoint: c, checkpoints: [c, ...(status.checkpoints ?? []).filter((o) => o.id !== c.id)].slice(0, keep), checkpointRequest: undefined });
    decision.measuredCheckpointSeconds = c.durationSeconds;
    decision.events.push({ type: 'Normal', reason: 'Checkpointed', message: `checkpoint ${c.id} complete at step ${c.step}: ${current.length} members, ${c.sizeBytes} bytes, ${c.durationSeconds.toFixed(2)}s` });
    return;
  }
  if (result.state === 'inconsistent') {
    set({ checkpointRequest: undefined });
    decision.events.push({ type: 'Warning', reason: 'CheckpointInconsistent', message: result.message });
    return;
  }
  const timeout = parseDuration(policy.checkpointTimeout ?? DEFAULT_CHECKPOINT_TIMEOUT) * 1000;
  if (view.now.getTime() - requestedAt.getTime() >= timeout) {
    set({ checkpointRequest: undefined });
    decision.events.push({ type: 'Warning', reason: 'CheckpointTimeout', message: `checkpoint ${req.id} did not complete within ${policy.checkpointTimeout ?? DEFAULT_CHECKPOINT_TIMEOUT}; waiting for ${result.missing.join(', ')}` });
    return;
  }
  decision.wakeAt = Math.min(decision.wakeAt ?? Infinity, requestedAt.getTime() + timeout);
}

/** Running with a policy: keep the interval current, ask for checkpoints when due, track them. */
function coordinateCheckpoints(view: GangView, status: GangStatus, set: (p: Partial<GangStatus>) => void, decision: GangDecision, current: KubeObject[]): void {
  const policy = view.policy!.spec;
  const nodes = [...new Set(current.map((t) => taskSpec(t).nodeName).filter((n): n is string => !!n))].map((n) => view.nodes.get(n)).filter((n): n is KubeObject => !!n);
  const interval = checkpointInterval({ policy, policyMeasuredSeconds: view.policy!.measuredSeconds, lastCheckpoint: status.lastCheckpoint, nodes, gpus: gangGpus(view.gang), now: view.now });
  decision.interval = interval;
  if (status.checkpointInterval?.seconds !== interval.seconds || status.checkpointInterval?.reason !== interval.reason) {
    set({ checkpointInterval: { seconds: interval.seconds, reason: interval.reason } });
  }
  if (status.checkpointRequest) {
    trackRequest(view, status, set, decision, current);
    if (status.checkpointRequest) return;
  }
  const since = Math.max(Date.parse(status.attemptStartTime ?? '') || 0, Date.parse(status.checkpointAttemptTime ?? '') || 0, Date.parse(status.lastCheckpoint?.time ?? '') || 0);
  const due = since + interval.seconds * 1000;
  if (view.now.getTime() >= due) requestCheckpoint(status, set, 'Interval', view.now);
  else decision.wakeAt = Math.min(decision.wakeAt ?? Infinity, due);
}
