// The gang lifecycle as a pure function (src/controllers/gang/lifecycle.ts) and the
// checkpoint decisions under it (src/controllers/gang/checkpoints.ts): plain object
// fixtures in, a decision out; no store, no timers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Condition, KubeObject } from '../src/api/meta.ts';
import type { CheckpointPolicySpec } from '../src/api/kinds/checkpointpolicy.ts';
import type { CompleteCheckpoint, GangSchedulingGroupSpec } from '../src/api/kinds/gangschedulinggroup.ts';
import type { MemberCheckpoint } from '../src/api/kinds/workload.ts';
import {
  reconcileGang, maxRestartsOf, restartBackoffSeconds, describeFailure, MISSING_TASK_GRACE_MS, CONDITION_PREEMPTION,
  type GangDecision, type GangStatus, type GangView,
} from '../src/controllers/gang/lifecycle.ts';
import {
  checkpointCompletion, checkpointInterval, gangMtbf, DEFAULT_FAILURES_PER_GPU_HOUR, FIRST_MEASUREMENT_SECONDS, AUTO_MIN_SECONDS, AUTO_MAX_SECONDS,
} from '../src/controllers/gang/checkpoints.ts';
import { dalyInterval, mtbfFromRate } from '../src/checkpoint/interval.ts';
import { CONDITION_SCHEDULED, gangAttempt } from '../src/scheduler/controller/binding.ts';

// ---- fixtures ---------------------------------------------------------------------------

const T0 = Date.parse('2025-03-01T12:00:00.000Z');
/** The moment `s` seconds after T0. */
const at = (s: number): Date => new Date(T0 + s * 1000);
const iso = (s: number): string => at(s).toISOString();
const ms = (s: number): number => T0 + s * 1000;

const GANG = 'llama';
const ROLE = 'worker';
const GPUS_PER_MEMBER = 8;
const taskNameOf = (i: number, gang = GANG) => `${gang}-${ROLE}-${i}`;
const nodeOf = (i: number) => `node-${i}`;

interface GangFixture {
  name?: string;
  members?: number;
  status?: Partial<GangStatus>;
  spec?: Partial<GangSchedulingGroupSpec>;
  generation?: number;
  deletionTimestamp?: string;
}

/** A gang of `members` workers placed one per node, Scheduled at T0 unless `status` says otherwise. */
function makeGang(f: GangFixture = {}): KubeObject {
  const name = f.name ?? GANG;
  const members = f.members ?? 3;
  const spec: GangSchedulingGroupSpec = {
    roles: [{ name: ROLE, replicas: members, template: { command: ['python3', 'train.py'], resources: { gpus: GPUS_PER_MEMBER } } }],
    checkpointPolicyName: 'ckpt',
    ...f.spec,
  };
  const status: GangStatus = {
    phase: 'Scheduled',
    placements: Array.from({ length: members }, (_, i) => ({ role: ROLE, index: i, taskName: taskNameOf(i, name), nodeName: nodeOf(i), devices: [] })),
    scheduledTime: iso(0),
    ...f.status,
  };
  return {
    apiVersion: 'k8s4ai.io/v1alpha1',
    kind: 'GangSchedulingGroup',
    metadata: {
      name, namespace: 'default', uid: `uid-${name}`, generation: f.generation ?? 1,
      ...(f.deletionTimestamp ? { deletionTimestamp: f.deletionTimestamp } : {}),
    },
    spec,
    status,
  };
}

type TaskState = string | { phase: string; exitCode?: number; signal?: string; reason?: string; message?: string; finishTime?: string; checkpoints?: MemberCheckpoint[] };

interface TaskFixture {
  gang?: KubeObject;
  /** The attempt the Tasks belong to; default the gang's current one. */
  attempt?: number;
  deleting?: number[];
}

/** One Task per state, member i on node-i; a state is a phase or a whole status. */
function makeTasks(states: TaskState[], f: TaskFixture = {}): KubeObject[] {
  const gang = f.gang ?? makeGang();
  const attempt = f.attempt ?? gangAttempt(gang);
  return states.map((s, i) => ({
    apiVersion: 'k8s4ai.io/v1alpha1',
    kind: 'Task',
    metadata: {
      name: taskNameOf(i, gang.metadata.name),
      namespace: 'default',
      uid: `task-${gang.metadata.name}-${i}-a${attempt}`,
      ...(f.deleting?.includes(i) ? { deletionTimestamp: iso(-1) } : {}),
    },
    spec: { gangName: gang.metadata.name, role: ROLE, index: i, worldSize: states.length, attempt, nodeName: nodeOf(i), command: ['python3', 'train.py'] },
    status: typeof s === 'string' ? { phase: s } : s,
  }));
}

const running = (n = 3): TaskState[] => Array.from({ length: n }, () => 'Running');

function makePolicy(spec: Partial<CheckpointPolicySpec> = {}, measuredSeconds?: number): NonNullable<GangView['policy']> {
  return {
    spec: { interval: '30s', storage: { type: 'LocalNVMe', path: '/var/lib/ckpt' }, ...spec },
    ...(measuredSeconds !== undefined ? { measuredSeconds } : {}),
  };
}

function makeNode(name: string, status: Record<string, unknown> = {}, created?: Date): KubeObject {
  return {
    apiVersion: 'k8s4ai.io/v1alpha1',
    kind: 'Node',
    metadata: { name, ...(created ? { creationTimestamp: created.toISOString() } : {}) },
    spec: {},
    status,
  };
}

function nodeMap(...nodes: KubeObject[]): Map<string, KubeObject> {
  return new Map(nodes.map((n) => [n.metadata.name, n]));
}

function reconcile(gang: KubeObject, tasks: KubeObject[], now: Date, opts: { policy?: GangView['policy']; nodes?: Map<string, KubeObject> } = {}): GangDecision {
  return reconcileGang({ gang, tasks, now, nodes: opts.nodes ?? new Map(), ...(opts.policy ? { policy: opts.policy } : {}) });
}

/** A member's report of checkpoint `id` (as its agent writes status.checkpoints). */
function report(id: string, step: number, i: number, o: { sizeBytes?: number; time?: string; node?: string } = {}): MemberCheckpoint {
  const node = o.node ?? nodeOf(i);
  return { id, step, sizeBytes: o.sizeBytes ?? 1000, files: 2, time: o.time ?? iso(31), node, path: `/var/lib/ckpt/default/${GANG}/${ROLE}-${i}/${id}` };
}

function complete(id: string, step: number, time: string, durationSeconds = 2): CompleteCheckpoint {
  return { id, step, time, durationSeconds, sizeBytes: 3000, nodes: [nodeOf(0), nodeOf(1), nodeOf(2)] };
}

const conditionOf = (status: GangStatus | undefined, type: string): Condition | undefined => status?.conditions?.find((c) => c.type === type);
const names = (objs: KubeObject[]) => objs.map((o) => o.metadata.name).sort();
const withStatus = (gang: KubeObject, status: GangStatus | undefined): KubeObject => ({ ...gang, status: status ?? gang.status });

/** A Running gang (attempt from its restarts/preemptions), started at T0. */
function runningGang(status: Partial<GangStatus> = {}, f: Omit<GangFixture, 'status'> = {}): KubeObject {
  return makeGang({ ...f, status: { phase: 'Running', startTime: iso(0), attemptStartTime: iso(0), checkpointInterval: { seconds: 30, reason: 'fixed interval 30s' }, ...status } });
}

// ---- the phases -------------------------------------------------------------------------

describe('reconcileGang: Scheduled → Running → Succeeded', () => {
  it('turns Running once every member runs: startTime, attemptStartTime and an event', () => {
    const gang = makeGang();
    const d = reconcile(gang, makeTasks(running()), at(5));
    assert.equal(d.status?.phase, 'Running');
    assert.equal(d.status?.startTime, iso(5));
    assert.equal(d.status?.attemptStartTime, iso(5));
    assert.deepEqual(d.stop, []);
    assert.deepEqual(d.events, [{ type: 'Normal', reason: 'Running', message: 'all 3 members are running' }]);
    assert.equal(d.wakeAt, undefined, 'no policy: nothing to wait for');
  });

  it('keeps the first startTime on a later attempt and names the attempt', () => {
    const gang = makeGang({ status: { restarts: 1, startTime: iso(-600) } });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(5));
    assert.equal(d.status?.phase, 'Running');
    assert.equal(d.status?.startTime, iso(-600));
    assert.equal(d.status?.attemptStartTime, iso(5));
    assert.match(d.events[0]!.message, /\(attempt 1\)/);
  });

  it('counts a member that already succeeded as running', () => {
    const d = reconcile(makeGang(), makeTasks(['Running', 'Succeeded', 'Running']), at(5));
    assert.equal(d.status?.phase, 'Running');
  });

  it('stays Scheduled (and writes nothing) while a member is still Bound', () => {
    const d = reconcile(makeGang(), makeTasks(['Running', 'Bound', 'Running']), at(5));
    assert.equal(d.status, undefined);
    assert.deepEqual(d.stop, []);
    assert.deepEqual(d.events, []);
  });

  it('turns Succeeded once every member succeeded, dropping a pending checkpoint request', () => {
    const gang = runningGang({ checkpointRequest: { id: 'ckpt-000002', time: iso(60), reason: 'Interval' }, checkpointSeq: 2 });
    const d = reconcile(gang, makeTasks(['Succeeded', 'Succeeded', 'Succeeded'], { gang }), at(90), { policy: makePolicy() });
    assert.equal(d.status?.phase, 'Succeeded');
    assert.equal(d.status?.completionTime, iso(90));
    assert.equal(d.status?.checkpointRequest, undefined);
    assert.deepEqual(d.stop, []);
    assert.deepEqual(d.events, [{ type: 'Normal', reason: 'Succeeded', message: 'all 3 members succeeded' }]);
  });

  it('does not mutate the objects it is given', () => {
    const gang = runningGang({ lastCheckpoint: complete('ckpt-000001', 10, iso(20)), checkpoints: [complete('ckpt-000001', 10, iso(20))] });
    const tasks = makeTasks(['Running', { phase: 'Failed', exitCode: 137, signal: 'SIGKILL' }, 'Running'], { gang });
    const before = structuredClone({ gang, tasks });
    reconcile(gang, tasks, at(100), { policy: makePolicy() });
    assert.deepEqual({ gang, tasks }, before);
  });

  it('does nothing for a gang being deleted', () => {
    const gang = makeGang({ deletionTimestamp: iso(1) });
    const d = reconcile(gang, makeTasks(['Failed', 'Running', 'Running'], { gang }), at(5), { policy: makePolicy() });
    assert.deepEqual(d, { stop: [], events: [] });
  });
});

describe('reconcileGang: a member fails', () => {
  const policy = makePolicy({ restore: { strategy: 'RestartGang', maxRestarts: 3, backoff: { initial: '10s', max: '1m' }, permanentExitCodes: [3, 137] } });

  it('a SIGKILLed member (exit 137) restarts the whole gang from its last checkpoint after the backoff', () => {
    const gang = runningGang({
      lastCheckpoint: complete('ckpt-000004', 800, iso(50)),
      checkpointRequest: { id: 'ckpt-000005', time: iso(90), reason: 'Interval' },
      checkpointSeq: 5,
    });
    const tasks = makeTasks(['Running', { phase: 'Failed', exitCode: 137, signal: 'SIGKILL' }, 'Running'], { gang });
    const d = reconcile(gang, tasks, at(100), { policy });
    const st = d.status!;
    assert.equal(st.phase, 'Restarting');
    assert.equal(st.restarts, 1);
    assert.equal(st.nextRestartTime, iso(110), 'initial backoff 10s');
    assert.equal(st.checkpointRequest, undefined, 'the pending checkpoint is abandoned');
    assert.deepEqual(st.lastFailure, { taskName: taskNameOf(1), nodeName: nodeOf(1), reason: 'Error', exitCode: 137, time: iso(100) });
    assert.deepEqual(names(d.stop), names(tasks), 'every member of the attempt stops, the failed one too');
    assert.equal(d.events.length, 1);
    const e = d.events[0]!;
    assert.equal(e.type, 'Warning');
    assert.equal(e.reason, 'Restarting');
    assert.match(e.message, /member llama-worker-1 was killed by SIGKILL on node node-1/);
    assert.match(e.message, /from checkpoint ckpt-000004 \(step 800\)/);
    assert.match(e.message, /in 10s \(restart 1 of 3\)/);
    assert.equal(st.lastCheckpoint?.id, 'ckpt-000004', 'the checkpoint to resume from is kept');
  });

  it('waits a moment for the peers\' reports and names the first member to fail as the cause', () => {
    const gang = runningGang({ lastCheckpoint: complete('ckpt-000004', 800, iso(50)) });
    // Member 1 was killed at 99.5 s; its peers lose the connection and exit 1 a moment later.
    const killed = makeTasks(['Running', { phase: 'Failed', exitCode: 137, signal: 'SIGKILL', finishTime: iso(99.5) }, 'Running'], { gang });
    const early = reconcile(gang, killed, at(100), { policy });
    assert.equal(early.status, undefined, 'nothing decided while peers may still report');
    assert.equal(early.wakeAt, at(101).getTime(), 'looks again 1.5 s after the failure');
    const all = makeTasks([{ phase: 'Failed', exitCode: 1, finishTime: iso(99.8) }, { phase: 'Failed', exitCode: 137, signal: 'SIGKILL', finishTime: iso(99.5) }, { phase: 'Failed', exitCode: 1, finishTime: iso(99.7) }], { gang });
    const d = reconcile(gang, all, at(100.2), { policy });
    assert.equal(d.status?.phase, 'Restarting', 'every member has reported: no reason to wait');
    assert.equal(d.status?.lastFailure?.taskName, taskNameOf(1), 'the first to fail is the cause, whatever order the reports came in');
  });

  it('says it restarts from the start when there is no complete checkpoint', () => {
    const gang = runningGang();
    const d = reconcile(gang, makeTasks(['Running', 'Running', { phase: 'Failed', exitCode: 1 }], { gang }), at(100), { policy });
    assert.equal(d.status?.phase, 'Restarting');
    assert.match(d.events[0]!.message, /exited with code 1 on node node-2; .* from the start in 10s/);
  });

  it('backs off exponentially, capped at the policy maximum', () => {
    const lenient = makePolicy({ restore: { strategy: 'RestartGang', maxRestarts: 10, backoff: { initial: '10s', max: '1m' } } });
    const expected: [restartsBefore: number, backoffSeconds: number][] = [[0, 10], [1, 20], [2, 40], [3, 60], [6, 60]];
    for (const [restarts, backoff] of expected) {
      const gang = runningGang({ restarts });
      const d = reconcile(gang, makeTasks(['Failed', 'Running', 'Running'], { gang }), at(100), { policy: lenient });
      assert.equal(d.status?.phase, 'Restarting', `after ${restarts} restarts`);
      assert.equal(d.status?.restarts, restarts + 1);
      assert.equal(d.status?.nextRestartTime, iso(100 + backoff), `backoff before restart ${restarts + 1}`);
    }
  });

  it('reports the node-lost reason a lost node leaves on its Tasks', () => {
    const gang = runningGang();
    const tasks = makeTasks(['Running', { phase: 'Failed', reason: 'NodeLost', message: 'node node-1 stopped posting heartbeats' }, 'Running'], { gang });
    const d = reconcile(gang, tasks, at(100), { policy });
    assert.equal(d.status?.lastFailure?.reason, 'NodeLost');
    assert.equal(d.status?.lastFailure?.message, 'node node-1 stopped posting heartbeats');
    assert.match(d.events[0]!.message, /was lost with its node on node node-1/);
  });

  it('treats a Lost member as failed (reason Lost)', () => {
    const gang = runningGang();
    const d = reconcile(gang, makeTasks(['Running', 'Running', 'Lost'], { gang }), at(100), { policy });
    assert.equal(d.status?.phase, 'Restarting');
    assert.equal(d.status?.lastFailure?.reason, 'Lost');
  });

  it('does not stop members already being deleted', () => {
    const gang = runningGang();
    const tasks = makeTasks(['Failed', 'Running', 'Running'], { gang, deleting: [2] });
    const d = reconcile(gang, tasks, at(100), { policy });
    assert.deepEqual(names(d.stop), [taskNameOf(0), taskNameOf(1)]);
  });

  it('a permanent exit code fails the gang at once and stops only the members still running', () => {
    const gang = runningGang({ checkpointRequest: { id: 'ckpt-000001', time: iso(30), reason: 'Interval' } }, { members: 4 });
    const tasks = makeTasks([{ phase: 'Failed', exitCode: 3 }, 'Running', 'Succeeded', 'Running'], { gang });
    const d = reconcile(gang, tasks, at(100), { policy });
    const st = d.status!;
    assert.equal(st.phase, 'Failed');
    assert.equal(st.completionTime, iso(100));
    assert.equal(st.restarts, undefined, 'no restart counted');
    assert.equal(st.checkpointRequest, undefined);
    assert.deepEqual(st.lastFailure, { taskName: taskNameOf(0), nodeName: nodeOf(0), reason: 'Error', exitCode: 3, time: iso(100), permanent: true });
    assert.deepEqual(names(d.stop), [taskNameOf(1), taskNameOf(3)]);
    assert.equal(d.events[0]!.reason, 'GangFailed');
    assert.match(d.events[0]!.message, /exit code 3 is permanent in the CheckpointPolicy/);
  });

  it('an exit code listed as permanent does not count when the member was killed by a signal', () => {
    const gang = runningGang();
    const d = reconcile(gang, makeTasks([{ phase: 'Failed', exitCode: 137, signal: 'SIGKILL' }, 'Running', 'Running'], { gang }), at(100), { policy });
    assert.equal(d.status?.phase, 'Restarting');
    assert.equal(d.status?.lastFailure?.permanent, undefined);
  });

  it('fails once restarts reach maxRestarts', () => {
    const gang = runningGang({ restarts: 3 });
    const tasks = makeTasks(['Running', 'Failed', 'Running'], { gang });
    const d = reconcile(gang, tasks, at(100), { policy });
    assert.equal(d.status?.phase, 'Failed');
    assert.equal(d.status?.restarts, 3);
    assert.equal(d.status?.nextRestartTime, undefined);
    assert.deepEqual(names(d.stop), [taskNameOf(0), taskNameOf(2)], 'the failed record stays; the running members stop');
    assert.match(d.events[0]!.message, /restarted 3 times, the limit/);
  });

  it("the gang's own maxRestarts overrides the policy's", () => {
    const strict = runningGang({ restarts: 1 }, { spec: { maxRestarts: 1 } });
    assert.equal(reconcile(strict, makeTasks(['Failed', 'Running', 'Running'], { gang: strict }), at(100), { policy }).status?.phase, 'Failed');
    const lenient = runningGang({ restarts: 3 }, { spec: { maxRestarts: 5 } });
    const d = reconcile(lenient, makeTasks(['Failed', 'Running', 'Running'], { gang: lenient }), at(100), { policy });
    assert.equal(d.status?.phase, 'Restarting');
    assert.match(d.events[0]!.message, /restart 4 of 5/);
  });

  it('without a policy the gang fails on its first failure', () => {
    const gang = makeGang({ status: { phase: 'Running', startTime: iso(0), attemptStartTime: iso(0) } });
    const d = reconcile(gang, makeTasks(['Failed', 'Running', 'Running'], { gang }), at(100));
    assert.equal(d.status?.phase, 'Failed');
    assert.match(d.events[0]!.message, /restarted 0 times, the limit/);
  });

  it('without a policy a gang with maxRestarts restarts with the default backoff (10s)', () => {
    const gang = makeGang({ spec: { maxRestarts: 2, checkpointPolicyName: undefined }, status: { phase: 'Running', attemptStartTime: iso(0) } });
    const d = reconcile(gang, makeTasks(['Failed', 'Running', 'Running'], { gang }), at(100));
    assert.equal(d.status?.phase, 'Restarting');
    assert.equal(d.status?.nextRestartTime, iso(110));
  });

  it('a failure while still Scheduled restarts the gang the same way', () => {
    const gang = makeGang();
    const d = reconcile(gang, makeTasks(['Running', 'Failed', 'Bound'], { gang }), at(5), { policy });
    assert.equal(d.status?.phase, 'Restarting');
    assert.equal(d.stop.length, 3);
  });
});

describe('reconcileGang: missing and stale Tasks', () => {
  const policy = makePolicy({ restore: { strategy: 'RestartGang', maxRestarts: 3 } });

  it('waits for a missing member until MISSING_TASK_GRACE_MS after scheduling', () => {
    const gang = makeGang();
    const tasks = makeTasks(['Running', 'Running']);
    const d = reconcile(gang, tasks, at(5), { policy });
    assert.equal(d.status, undefined);
    assert.deepEqual(d.stop, []);
    assert.equal(d.wakeAt, T0 + MISSING_TASK_GRACE_MS);
  });

  it('counts a member missing past the grace as failed (TaskDeleted) and restarts the gang', () => {
    const gang = makeGang({ status: { phase: 'Running', attemptStartTime: iso(1) } });
    const tasks = makeTasks(['Running', 'Running'], { gang });
    const d = reconcile(gang, tasks, new Date(T0 + MISSING_TASK_GRACE_MS), { policy });
    assert.equal(d.status?.phase, 'Restarting');
    assert.equal(d.status?.restarts, 1);
    assert.deepEqual(d.status?.lastFailure, { taskName: taskNameOf(2), nodeName: nodeOf(2), reason: 'TaskDeleted', time: new Date(T0 + MISSING_TASK_GRACE_MS).toISOString() });
    assert.deepEqual(names(d.stop), names(tasks));
    assert.match(d.events[0]!.message, /member llama-worker-2 was deleted/);
  });

  it('stops Tasks of an older attempt (not already being deleted) and ignores their failures', () => {
    const gang = runningGang({ restarts: 1, preemptions: 1 });
    assert.equal(gangAttempt(gang), 2);
    const current = makeTasks(running(), { gang });
    const old = makeTasks(['Failed', 'Running', 'Running'], { gang, attempt: 1, deleting: [2] }).map((t) => ({ ...t, metadata: { ...t.metadata, name: `${t.metadata.name}-old` } }));
    const d = reconcile(gang, [...current, ...old], at(10), { policy });
    assert.notEqual(d.status?.phase, 'Restarting');
    assert.deepEqual(names(d.stop), [`${taskNameOf(0)}-old`, `${taskNameOf(1)}-old`]);
  });

  it('a Pending gang stops the leftovers of an earlier attempt but not its new Tasks', () => {
    const gang = makeGang({ status: { phase: 'Pending', restarts: 1, placements: undefined, scheduledTime: undefined } });
    const stale = makeTasks(['Running', 'Running'], { gang, attempt: 0 });
    const fresh = makeTasks(['Bound'], { gang }).map((t) => ({ ...t, metadata: { ...t.metadata, name: 'fresh' } }));
    const d = reconcile(gang, [...stale, ...fresh], at(10), { policy });
    assert.equal(d.status, undefined);
    assert.deepEqual(names(d.stop), names(stale));
  });
});

describe('reconcileGang: Restarting', () => {
  const policy = makePolicy({ restore: { strategy: 'RestartGang', maxRestarts: 3 } });
  const restarting = (status: Partial<GangStatus> = {}) => makeGang({
    generation: 4,
    status: {
      phase: 'Restarting', restarts: 1, startTime: iso(0), attemptStartTime: iso(10), nextRestartTime: iso(200),
      lastCheckpoint: complete('ckpt-000007', 1400, iso(90)),
      conditions: [{ type: CONDITION_SCHEDULED, status: 'True', reason: 'Scheduled', lastTransitionTime: iso(0) }],
      ...status,
    },
  });

  it('stops the Tasks left and waits for them to go', () => {
    const gang = restarting();
    const tasks = makeTasks(['Failed', 'Running', 'Running'], { gang, attempt: 0, deleting: [1] });
    const d = reconcile(gang, tasks, at(300), { policy });
    assert.equal(d.status, undefined, 'stays Restarting');
    assert.deepEqual(names(d.stop), [taskNameOf(0), taskNameOf(2)]);
    assert.equal(d.wakeAt, undefined, 'the Tasks going wakes it');
  });

  it('waits for the backoff once the Tasks are gone', () => {
    const d = reconcile(restarting(), [], at(150), { policy });
    assert.equal(d.status, undefined);
    assert.equal(d.wakeAt, ms(200));
  });

  it('goes back to Pending after the backoff: placements cleared, Scheduled=False reason Restarting', () => {
    const gang = restarting();
    const d = reconcile(gang, [], at(200), { policy });
    const st = d.status!;
    assert.equal(st.phase, 'Pending');
    for (const field of ['placements', 'scheduledTime', 'attemptStartTime', 'nextRestartTime'] as const) assert.equal(st[field], undefined, field);
    assert.equal(st.restarts, 1, 'the count stays');
    assert.equal(st.startTime, iso(0));
    const cond = conditionOf(st, CONDITION_SCHEDULED)!;
    assert.equal(cond.status, 'False');
    assert.equal(cond.reason, 'Restarting');
    assert.equal(cond.observedGeneration, 4);
    assert.equal(cond.lastTransitionTime, iso(200));
    assert.match(cond.message!, /resume from checkpoint ckpt-000007 \(step 1400\)/);
    assert.equal(d.wakeAt, undefined);
    assert.deepEqual(d.stop, []);
  });

  it('says it resumes from the start without a checkpoint', () => {
    const d = reconcile(restarting({ lastCheckpoint: undefined }), [], at(500), { policy });
    assert.match(conditionOf(d.status, CONDITION_SCHEDULED)!.message!, /from the start \(no complete checkpoint\)/);
  });

  it('a Failed gang stops only its members still running', () => {
    const gang = makeGang({ members: 5, status: { phase: 'Failed' } });
    const d = reconcile(gang, makeTasks(['Failed', 'Running', 'Succeeded', 'Lost', 'Bound'], { gang }), at(10), { policy });
    assert.equal(d.status, undefined);
    assert.deepEqual(names(d.stop), [taskNameOf(1), taskNameOf(4)]);
  });

  it('a whole cycle: fail, stop, back off, reschedule, run attempt 1', () => {
    let gang = runningGang();
    let tasks = makeTasks(['Running', { phase: 'Failed', exitCode: 137, signal: 'SIGKILL' }, 'Running'], { gang });
    let d = reconcile(gang, tasks, at(100), { policy });
    gang = withStatus(gang, d.status);
    assert.equal((gang.status as GangStatus).phase, 'Restarting');
    // The agents stop the members; the records go.
    const stopped = new Set(d.stop.map((t) => t.metadata.name));
    tasks = tasks.filter((t) => !stopped.has(t.metadata.name));
    assert.equal(tasks.length, 0);
    d = reconcile(gang, tasks, at(105), { policy });
    assert.equal(d.wakeAt, ms(110));
    d = reconcile(gang, tasks, at(110), { policy });
    gang = withStatus(gang, d.status);
    assert.equal((gang.status as GangStatus).phase, 'Pending');
    // The scheduler places it again.
    gang = makeGang({ status: { ...(gang.status as GangStatus), phase: 'Scheduled', scheduledTime: iso(120), placements: (makeGang().status as GangStatus).placements } });
    assert.equal(gangAttempt(gang), 1);
    tasks = makeTasks(running(), { gang });
    d = reconcile(gang, tasks, at(125), { policy });
    assert.equal(d.status?.phase, 'Running');
    assert.equal(d.status?.attemptStartTime, iso(125));
    assert.equal(d.status?.startTime, iso(0));
    assert.deepEqual(d.stop, []);
  });
});

// ---- checkpoints ------------------------------------------------------------------------

describe('reconcileGang: interval checkpoints', () => {
  const policy = makePolicy({ interval: '30s', keepLast: 2, checkpointTimeout: '2m' });

  it('before the interval is due: no request, wake at attemptStartTime + 30s', () => {
    const gang = runningGang();
    const d = reconcile(gang, makeTasks(running(), { gang }), at(10), { policy });
    assert.equal(d.status, undefined, 'nothing changes');
    assert.equal(d.wakeAt, ms(30));
    assert.deepEqual(d.interval, { seconds: 30, reason: 'fixed interval 30s' });
  });

  it('records the interval in use the first time', () => {
    const gang = runningGang({ checkpointInterval: undefined });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(10), { policy });
    assert.deepEqual(d.status?.checkpointInterval, { seconds: 30, reason: 'fixed interval 30s' });
  });

  it('the Scheduled → Running pass already plans the first checkpoint', () => {
    const d = reconcile(makeGang(), makeTasks(running()), at(7), { policy });
    assert.equal(d.status?.phase, 'Running');
    assert.equal(d.wakeAt, ms(37));
  });

  it('when due: asks for checkpoint ckpt-000001 (reason Interval)', () => {
    const gang = runningGang();
    const d = reconcile(gang, makeTasks(running(), { gang }), at(30), { policy });
    assert.deepEqual(d.status?.checkpointRequest, { id: 'ckpt-000001', time: iso(30), reason: 'Interval' });
    assert.equal(d.status?.checkpointSeq, 1);
    assert.equal(d.status?.checkpointAttemptTime, iso(30));
    assert.equal(d.status?.phase, 'Running');
  });

  it('numbers requests on from checkpointSeq', () => {
    const gang = runningGang({ checkpointSeq: 41, lastCheckpoint: complete('ckpt-000041', 4100, iso(100)), checkpointAttemptTime: iso(98) });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(130), { policy });
    assert.equal(d.status?.checkpointRequest?.id, 'ckpt-000042');
    assert.equal(d.status?.checkpointSeq, 42);
  });

  it('counts the interval from the end of the last checkpoint', () => {
    const gang = runningGang({ checkpointSeq: 1, checkpointAttemptTime: iso(30), lastCheckpoint: complete('ckpt-000001', 100, iso(40)) });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(60), { policy });
    assert.equal(d.status, undefined);
    assert.equal(d.wakeAt, ms(70));
  });

  it('waits for every member, until the timeout', () => {
    const gang = runningGang({ checkpointSeq: 1, checkpointAttemptTime: iso(30), checkpointRequest: { id: 'ckpt-000001', time: iso(30), reason: 'Interval' } });
    const tasks = makeTasks([{ phase: 'Running', checkpoints: [report('ckpt-000001', 300, 0)] }, 'Running', 'Running'], { gang });
    const d = reconcile(gang, tasks, at(60), { policy });
    assert.equal(d.status, undefined);
    assert.equal(d.wakeAt, ms(150), 'request time + checkpointTimeout 2m');
  });

  it('completes when every member reports the id at the same step', () => {
    const old1 = complete('ckpt-000001', 100, iso(10));
    const old2 = complete('ckpt-000002', 200, iso(20));
    const gang = runningGang({
      checkpointSeq: 3, checkpointAttemptTime: iso(30), lastCheckpoint: old2, checkpoints: [old2, old1],
      checkpointRequest: { id: 'ckpt-000003', time: iso(30), reason: 'Interval' },
    });
    const tasks = makeTasks([
      { phase: 'Running', checkpoints: [report('ckpt-000002', 200, 0), report('ckpt-000003', 300, 0, { sizeBytes: 100, time: iso(32) })] },
      { phase: 'Running', checkpoints: [report('ckpt-000003', 300, 1, { sizeBytes: 200, time: iso(35) })] },
      { phase: 'Running', checkpoints: [report('ckpt-000003', 300, 2, { sizeBytes: 300, time: iso(33), node: nodeOf(0) })] },
    ], { gang });
    const d = reconcile(gang, tasks, at(36), { policy });
    const st = d.status!;
    const c = st.lastCheckpoint!;
    assert.equal(c.id, 'ckpt-000003');
    assert.equal(c.step, 300);
    assert.equal(c.sizeBytes, 600);
    assert.equal(c.time, iso(35), 'the latest member report');
    assert.equal(c.durationSeconds, 5, 'latest report − request');
    assert.deepEqual(c.nodes, [nodeOf(0), nodeOf(1)], 'each node once');
    assert.deepEqual(c.locations, [
      { member: 'worker-0', node: nodeOf(0), path: `/var/lib/ckpt/default/${GANG}/worker-0/ckpt-000003` },
      { member: 'worker-1', node: nodeOf(1), path: `/var/lib/ckpt/default/${GANG}/worker-1/ckpt-000003` },
      { member: 'worker-2', node: nodeOf(0), path: `/var/lib/ckpt/default/${GANG}/worker-2/ckpt-000003` },
    ]);
    assert.deepEqual(st.checkpoints?.map((k) => k.id), ['ckpt-000003', 'ckpt-000002'], 'newest first, keepLast 2');
    assert.equal(st.checkpointRequest, undefined);
    assert.equal(d.measuredCheckpointSeconds, 5);
    assert.equal(d.events.length, 1);
    assert.equal(d.events[0]!.reason, 'Checkpointed');
    assert.match(d.events[0]!.message, /ckpt-000003 complete at step 300: 3 members, 600 bytes, 5\.00s/);
    assert.equal(d.wakeAt, ms(65), 'the next one an interval after this one ended');
  });

  it('keeps the default of 3 checkpoints without keepLast', () => {
    const olds = [4, 3, 2, 1].map((n) => complete(`ckpt-00000${n}`, n * 100, iso(n)));
    const gang = runningGang({ checkpointSeq: 5, checkpoints: olds, lastCheckpoint: olds[0], checkpointRequest: { id: 'ckpt-000005', time: iso(30), reason: 'Interval' } });
    const tasks = makeTasks([0, 1, 2].map((i) => ({ phase: 'Running', checkpoints: [report('ckpt-000005', 500, i)] })), { gang });
    const d = reconcile(gang, tasks, at(40), { policy: makePolicy({ interval: '30s' }) });
    assert.deepEqual(d.status?.checkpoints?.map((k) => k.id), ['ckpt-000005', 'ckpt-000004', 'ckpt-000003']);
  });

  it('drops a checkpoint written at different steps (Warning CheckpointInconsistent)', () => {
    const before = complete('ckpt-000001', 100, iso(10));
    const gang = runningGang({ checkpointSeq: 2, checkpointAttemptTime: iso(30), lastCheckpoint: before, checkpointRequest: { id: 'ckpt-000002', time: iso(30), reason: 'Interval' } });
    const tasks = makeTasks([
      { phase: 'Running', checkpoints: [report('ckpt-000002', 300, 0)] },
      { phase: 'Running', checkpoints: [report('ckpt-000002', 301, 1)] },
      { phase: 'Running', checkpoints: [report('ckpt-000002', 300, 2)] },
    ], { gang });
    const d = reconcile(gang, tasks, at(40), { policy });
    assert.equal(d.status?.checkpointRequest, undefined);
    assert.deepEqual(d.status?.lastCheckpoint, before, 'the last good one stays');
    assert.equal(d.measuredCheckpointSeconds, undefined);
    assert.deepEqual(d.events.map((e) => [e.type, e.reason]), [['Warning', 'CheckpointInconsistent']]);
    assert.match(d.events[0]!.message, /worker-1: 301/);
    assert.equal(d.wakeAt, ms(60), 'the next try an interval after this attempt');
  });

  it('drops a checkpoint past checkpointTimeout (Warning CheckpointTimeout naming the members missing)', () => {
    const slow = makePolicy({ interval: '10m', checkpointTimeout: '2m' });
    const gang = runningGang({ checkpointSeq: 1, checkpointAttemptTime: iso(30), checkpointInterval: { seconds: 600, reason: 'fixed interval 10m' }, checkpointRequest: { id: 'ckpt-000001', time: iso(30), reason: 'Interval' } });
    const tasks = makeTasks([{ phase: 'Running', checkpoints: [report('ckpt-000001', 300, 0)] }, 'Running', 'Running'], { gang });
    const d = reconcile(gang, tasks, at(150), { policy: slow });
    assert.equal(d.status?.checkpointRequest, undefined);
    assert.deepEqual(d.events.map((e) => [e.type, e.reason]), [['Warning', 'CheckpointTimeout']]);
    assert.match(d.events[0]!.message, /ckpt-000001 did not complete within 2m; waiting for worker-1, worker-2/);
    assert.equal(d.wakeAt, ms(630));
  });

  it('asks again at once after a timeout when the interval has passed meanwhile', () => {
    const gang = runningGang({ checkpointSeq: 1, checkpointAttemptTime: iso(30), checkpointRequest: { id: 'ckpt-000001', time: iso(30), reason: 'Interval' } });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(150), { policy });
    assert.equal(d.events[0]!.reason, 'CheckpointTimeout');
    assert.deepEqual(d.status?.checkpointRequest, { id: 'ckpt-000002', time: iso(150), reason: 'Interval' });
  });

  it('asks for no checkpoint without a policy', () => {
    const gang = runningGang();
    const d = reconcile(gang, makeTasks(running(), { gang }), at(3600));
    assert.equal(d.status, undefined);
    assert.equal(d.wakeAt, undefined);
    assert.equal(d.interval, undefined);
  });
});

describe('reconcileGang: interval auto', () => {
  it('before any measurement: the first checkpoint after FIRST_MEASUREMENT_SECONDS, with the assumed MTBF', () => {
    const gang = runningGang({ checkpointInterval: undefined });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(10), { policy: makePolicy({ interval: 'auto' }) });
    assert.equal(d.interval?.seconds, FIRST_MEASUREMENT_SECONDS);
    assert.match(d.interval!.reason, /no checkpoint measured yet/);
    assert.match(d.interval!.reason, /assumed .* failures per GPU-hour × 24 GPUs/);
    assert.deepEqual(d.status?.checkpointInterval, { seconds: FIRST_MEASUREMENT_SECONDS, reason: d.interval!.reason });
    assert.equal(d.interval?.mtbfSeconds, mtbfFromRate(DEFAULT_FAILURES_PER_GPU_HOUR, 3 * GPUS_PER_MEMBER));
    assert.equal(d.wakeAt, ms(FIRST_MEASUREMENT_SECONDS));
  });

  it('with a measured cost and no failures: Daly over the assumed rate', () => {
    const gang = runningGang();
    const d = reconcile(gang, makeTasks(running(), { gang }), at(10), { policy: makePolicy({ interval: 'auto' }, 20) });
    const mtbf = mtbfFromRate(DEFAULT_FAILURES_PER_GPU_HOUR, 24);
    assert.match(d.interval!.reason, /Daly/);
    assert.match(d.interval!.reason, /no failures observed; assumed/);
    assert.ok(Math.abs(d.interval!.seconds - dalyInterval(20, mtbf)) < 1e-6, `${d.interval!.seconds} vs ${dalyInterval(20, mtbf)}`);
  });

  it('with failures on its nodes: Daly over the observed MTBF', () => {
    const now = at(10);
    const tenHoursAgo = new Date(now.getTime() - 10 * 3_600_000);
    const nodes = nodeMap(
      makeNode(nodeOf(0), { failures: 2 }, tenHoursAgo),
      makeNode(nodeOf(1), {}, tenHoursAgo),
      makeNode(nodeOf(2), { failures: 0 }, tenHoursAgo),
      makeNode('elsewhere', { failures: 50 }, tenHoursAgo),
    );
    const gang = runningGang();
    const d = reconcile(gang, makeTasks(running(), { gang }), now, { policy: makePolicy({ interval: 'auto' }, 20), nodes });
    assert.ok(Math.abs(d.interval!.mtbfSeconds! - 18_000) < 1e-6, 'two failures in ten hours: M = 5h');
    assert.match(d.interval!.reason, /Daly/);
    assert.match(d.interval!.reason, /2 failures observed on its 3 nodes/);
    assert.ok(Math.abs(d.interval!.seconds - dalyInterval(20, 18_000)) < 1e-6);
  });

  it("prefers the gang's own last checkpoint cost to the policy's measurement", () => {
    const gang = runningGang({ lastCheckpoint: complete('ckpt-000001', 10, iso(5), 50) });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(10), { policy: makePolicy({ interval: 'auto', mtbfHint: '4h' }, 2) });
    assert.ok(Math.abs(d.interval!.seconds - dalyInterval(50, 4 * 3600)) < 1e-6);
    assert.match(d.interval!.reason, /mtbfHint/);
  });
});

describe('reconcileGang: preemption', () => {
  const notice = (s: number): Condition => ({ type: CONDITION_PREEMPTION, status: 'True', reason: 'ChaosPreempt', message: 'preempted', lastTransitionTime: iso(s) });
  const policy = makePolicy({ interval: '30m', preemptionGracePeriod: '60s' });

  it('a notice asks for a just-in-time checkpoint (reason Preemption) and wakes at the deadline', () => {
    const gang = runningGang({ conditions: [notice(100)], checkpointInterval: { seconds: 1800, reason: 'fixed interval 30m' } });
    const tasks = makeTasks(running(), { gang });
    const d = reconcile(gang, tasks, at(101), { policy });
    assert.equal(d.status?.phase, 'Running');
    assert.deepEqual(d.status?.checkpointRequest, { id: 'ckpt-000001', time: iso(101), reason: 'Preemption' });
    assert.deepEqual(d.stop, []);
    assert.equal(d.wakeAt, ms(160), 'notice + preemptionGracePeriod');
  });

  it('once the checkpoint completes after the notice: Restarting, preemptions+1, restarts unchanged, every Task stopped', () => {
    const gang = runningGang({
      restarts: 2, conditions: [notice(100)], checkpointSeq: 1, checkpointAttemptTime: iso(101),
      checkpointRequest: { id: 'ckpt-000001', time: iso(101), reason: 'Preemption' },
    });
    const tasks = makeTasks([0, 1, 2].map((i) => ({ phase: 'Running', checkpoints: [report('ckpt-000001', 900, i, { time: iso(103 + i) })] })), { gang });
    const d = reconcile(gang, tasks, at(110), { policy });
    const st = d.status!;
    assert.equal(st.phase, 'Restarting');
    assert.equal(st.preemptions, 1);
    assert.equal(st.restarts, 2);
    assert.equal(st.nextRestartTime, iso(110));
    assert.equal(st.checkpointRequest, undefined);
    assert.equal(st.lastCheckpoint?.id, 'ckpt-000001');
    assert.equal(st.lastCheckpoint?.step, 900);
    assert.equal(d.measuredCheckpointSeconds, 4);
    const cond = conditionOf(st, CONDITION_PREEMPTION)!;
    assert.equal(cond.status, 'False');
    assert.equal(cond.reason, 'Preempted');
    assert.equal(cond.lastTransitionTime, iso(110));
    assert.match(cond.message!, /just-in-time checkpoint ckpt-000001 \(step 900\)/);
    assert.deepEqual(names(d.stop), names(tasks));
    assert.ok(d.events.some((e) => e.type === 'Normal' && e.reason === 'Preempted'));
    assert.ok(d.events.some((e) => e.reason === 'Checkpointed'));
    assert.equal(gangAttempt(withStatus(gang, st)), 3, 'the next attempt counts the preemption');
  });

  it('a checkpoint completed after the notice is enough (no new request)', () => {
    const gang = runningGang({ conditions: [notice(100)], lastCheckpoint: complete('ckpt-000003', 700, iso(105)) });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(106), { policy });
    assert.equal(d.status?.phase, 'Restarting');
    assert.equal(d.status?.checkpointSeq, undefined, 'nothing asked');
  });

  it('a checkpoint from before the notice is not enough', () => {
    const gang = runningGang({ conditions: [notice(100)], lastCheckpoint: complete('ckpt-000003', 700, iso(99)), checkpointSeq: 3 });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(101), { policy });
    assert.equal(d.status?.phase, 'Running');
    assert.equal(d.status?.checkpointRequest?.id, 'ckpt-000004');
    assert.equal(d.status?.checkpointRequest?.reason, 'Preemption');
  });

  it('stops anyway once the grace period passes without a checkpoint', () => {
    const gang = runningGang({ conditions: [notice(100)], checkpointSeq: 1, checkpointRequest: { id: 'ckpt-000001', time: iso(101), reason: 'Preemption' } });
    const tasks = makeTasks(running(), { gang });
    const d = reconcile(gang, tasks, at(160), { policy });
    assert.equal(d.status?.phase, 'Restarting');
    assert.equal(d.status?.preemptions, 1);
    assert.equal(d.status?.checkpointRequest, undefined);
    assert.match(conditionOf(d.status, CONDITION_PREEMPTION)!.message!, /grace period ended before a checkpoint completed/);
    assert.deepEqual(names(d.stop), names(tasks));
  });

  it('without a policy it stops at once', () => {
    const gang = makeGang({ spec: { checkpointPolicyName: undefined }, status: { phase: 'Running', attemptStartTime: iso(0), conditions: [notice(100)] } });
    const tasks = makeTasks(running(), { gang });
    const d = reconcile(gang, tasks, at(100));
    assert.equal(d.status?.phase, 'Restarting');
    assert.equal(d.status?.preemptions, 1);
    assert.equal(d.status?.restarts, undefined);
    assert.equal(d.status?.nextRestartTime, iso(100));
    assert.match(conditionOf(d.status, CONDITION_PREEMPTION)!.message!, /no CheckpointPolicy/);
    assert.deepEqual(names(d.stop), names(tasks));
  });

  it('a notice that has been answered (False) is not acted on again', () => {
    const gang = runningGang({ conditions: [{ ...notice(100), status: 'False', reason: 'Preempted' }], checkpointInterval: { seconds: 1800, reason: 'fixed interval 30m' } });
    const d = reconcile(gang, makeTasks(running(), { gang }), at(110), { policy });
    assert.equal(d.status, undefined);
  });

  it(
    'a failure restart while a notice is pending does not preempt the next attempt',
    () => {
      let gang = runningGang({ conditions: [notice(100)], checkpointSeq: 1, checkpointRequest: { id: 'ckpt-000001', time: iso(101), reason: 'Preemption' } });
      // A member dies before the just-in-time checkpoint completes: a failure restart.
      let d = reconcile(gang, makeTasks(['Running', 'Failed', 'Running'], { gang }), at(105), { policy });
      assert.equal(d.status?.phase, 'Restarting');
      gang = withStatus(gang, d.status);
      d = reconcile(gang, [], at(200), { policy });
      assert.equal(d.status?.phase, 'Pending');
      gang = makeGang({ status: { ...d.status, phase: 'Scheduled', scheduledTime: iso(210), placements: (makeGang().status as GangStatus).placements } });
      // Attempt 1 runs on its new placement; nothing has asked to preempt it.
      d = reconcile(gang, makeTasks(running(), { gang }), at(220), { policy });
      assert.equal(d.status?.phase, 'Running');
      assert.equal(d.status?.preemptions, undefined);
      assert.deepEqual(d.stop, []);
    },
  );
});

// ---- the pieces -------------------------------------------------------------------------

describe('maxRestartsOf / restartBackoffSeconds / describeFailure', () => {
  const spec = (makeGang().spec as GangSchedulingGroupSpec);
  it('the restart limit: the gang, else the policy, else 10 with a policy and 0 without', () => {
    assert.equal(maxRestartsOf(spec), 0);
    assert.equal(maxRestartsOf(spec, makePolicy().spec), 10);
    assert.equal(maxRestartsOf(spec, makePolicy({ restore: { strategy: 'RestartGang', maxRestarts: 4 } }).spec), 4);
    assert.equal(maxRestartsOf({ ...spec, maxRestarts: 0 }, makePolicy({ restore: { strategy: 'RestartGang', maxRestarts: 4 } }).spec), 0);
    assert.equal(maxRestartsOf({ ...spec, maxRestarts: 7 }), 7);
  });

  it('backoff: 10s doubling up to 5m by default', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map((n) => restartBackoffSeconds(undefined, n)), [10, 20, 40, 80, 160, 300, 300, 300]);
    assert.equal(restartBackoffSeconds(undefined, 0), 10, 'never below the initial delay');
    const p = makePolicy({ restore: { strategy: 'RestartGang', backoff: { initial: '500ms', max: '2s' } } }).spec;
    assert.deepEqual([1, 2, 3, 4].map((n) => restartBackoffSeconds(p, n)), [0.5, 1, 2, 2]);
  });

  it('describes a failure for people', () => {
    const [t] = makeTasks([{ phase: 'Failed', exitCode: 2 }]);
    assert.equal(describeFailure(t!), 'exited with code 2 on node node-0');
    const [s] = makeTasks([{ phase: 'Failed', exitCode: 137, signal: 'SIGKILL' }]);
    assert.equal(describeFailure(s!), 'was killed by SIGKILL on node node-0');
    const [l] = makeTasks([{ phase: 'Lost', message: 'agent restarted' }]);
    assert.equal(describeFailure(l!), 'was lost on node node-0 (agent restarted)');
    const [m] = makeTasks([{ phase: 'Failed', message: 'image missing' }]);
    assert.equal(describeFailure(m!), 'failed on node node-0: image missing');
  });
});

describe('checkpointCompletion', () => {
  const tasksWith = (reports: (MemberCheckpoint[] | undefined)[]) =>
    makeTasks(reports.map((c) => (c ? { phase: 'Running', checkpoints: c } : 'Running')), { gang: makeGang({ members: reports.length }) });

  it('is waiting, naming the members that have not reported', () => {
    const r = checkpointCompletion(GANG, 'ckpt-000001', at(30), tasksWith([[report('ckpt-000001', 1, 0)], [report('ckpt-000000', 1, 1)], undefined]));
    assert.deepEqual(r, { state: 'waiting', missing: ['worker-1', 'worker-2'] });
  });

  it('is inconsistent when the steps differ', () => {
    const r = checkpointCompletion(GANG, 'c', at(30), tasksWith([[report('c', 5, 0)], [report('c', 6, 1)]]));
    assert.equal(r.state, 'inconsistent');
  });

  it('sorts locations by member, numerically (worker-2 before worker-10)', () => {
    const n = 12;
    const reports = Array.from({ length: n }, (_, i) => [report('c', 7, i, { sizeBytes: i, time: iso(30 + i) })]);
    const tasks = tasksWith(reports).reverse();
    const r = checkpointCompletion(GANG, 'c', at(30), tasks);
    assert.equal(r.state, 'complete');
    if (r.state !== 'complete') return;
    assert.deepEqual(r.checkpoint.locations!.map((l) => l.member), Array.from({ length: n }, (_, i) => `worker-${i}`));
    assert.deepEqual(r.checkpoint.nodes, Array.from({ length: n }, (_, i) => nodeOf(i)));
    assert.equal(r.checkpoint.sizeBytes, (n * (n - 1)) / 2);
    assert.equal(r.checkpoint.durationSeconds, n - 1);
  });

  it('never reports a negative duration (a member clock behind the request)', () => {
    const r = checkpointCompletion(GANG, 'c', at(30), tasksWith([[report('c', 7, 0, { time: iso(20) })]]));
    assert.equal(r.state === 'complete' && r.checkpoint.durationSeconds, 0);
  });

  it('falls back to the request time for an unreadable report time', () => {
    const r = checkpointCompletion(GANG, 'c', at(30), tasksWith([[report('c', 7, 0, { time: 'not a time' })]]));
    assert.equal(r.state === 'complete' && r.checkpoint.time, iso(30));
  });

  it('keeps a member name that lacks the gang prefix as is', () => {
    const [t] = tasksWith([[report('c', 7, 0)]]);
    const renamed = { ...t!, metadata: { ...t!.metadata, name: 'solo' } };
    const r = checkpointCompletion(GANG, 'c', at(30), [renamed]);
    assert.equal(r.state === 'complete' && r.checkpoint.locations![0]!.member, 'solo');
  });

  it(
    'with no members it is not complete (and does not throw)',
    () => {
      const r = checkpointCompletion(GANG, 'c', at(30), []);
      assert.notEqual(r.state, 'complete');
    },
  );
});

describe('checkpointInterval / gangMtbf', () => {
  const auto = (extra: Partial<CheckpointPolicySpec> = {}) => makePolicy({ interval: 'auto', ...extra }).spec;
  const now = at(0);

  it('a fixed interval is taken as it is', () => {
    assert.deepEqual(checkpointInterval({ policy: makePolicy({ interval: '1h30m' }).spec, nodes: [], gpus: 8, now }), { seconds: 5400, reason: 'fixed interval 1h30m' });
  });

  it('auto without a measurement: FIRST_MEASUREMENT_SECONDS', () => {
    const d = checkpointInterval({ policy: auto({ mtbfHint: '2h' }), nodes: [], gpus: 8, now });
    assert.equal(d.seconds, FIRST_MEASUREMENT_SECONDS);
    assert.equal(d.mtbfSeconds, 7200);
    assert.equal(d.checkpointSeconds, undefined);
    assert.match(d.reason, /^auto: no checkpoint measured yet; the first comes after 1m to measure its cost \(M=2h: mtbfHint/);
  });

  it('auto uses the policy measurement without a checkpoint of its own', () => {
    const d = checkpointInterval({ policy: auto({ mtbfHint: '2h' }), policyMeasuredSeconds: 10, nodes: [], gpus: 8, now });
    assert.equal(d.checkpointSeconds, 10);
    assert.ok(Math.abs(d.seconds - dalyInterval(10, 7200)) < 1e-6);
    assert.match(d.reason, /^auto: Daly: δ=10s, M=2h → \S+ \(M: mtbfHint \(no failures observed yet\)\)$/);
  });

  it('a checkpoint measured at 0 s still gives a positive interval, raised to the minimum', () => {
    const d = checkpointInterval({ policy: auto({ mtbfHint: '1h' }), lastCheckpoint: complete('c', 1, iso(0), 0), nodes: [], gpus: 8, now });
    assert.equal(d.checkpointSeconds, 0.001);
    assert.equal(d.seconds, AUTO_MIN_SECONDS);
    assert.match(d.reason, /raised to the minimum/);
  });

  it('caps auto at a day', () => {
    const d = checkpointInterval({ policy: auto({ mtbfHint: '10000h' }), policyMeasuredSeconds: 3600, nodes: [], gpus: 8, now });
    assert.equal(d.seconds, AUTO_MAX_SECONDS);
    assert.match(d.reason, /capped at the maximum/);
  });

  it('gangMtbf pools the failure rates of the nodes', () => {
    const nodes = [
      makeNode('a', { failures: 1 }, new Date(now.getTime() - 2 * 3_600_000)), // 0.5 / h
      makeNode('b', { failures: 3 }, new Date(now.getTime() - 6 * 3_600_000)), // 0.5 / h
      makeNode('c', {}, new Date(now.getTime() - 1 * 3_600_000)),
    ];
    const m = gangMtbf(auto({ mtbfHint: '1m' }), nodes, 16, now);
    assert.ok(Math.abs(m.seconds - 3600) < 1e-6, `${m.seconds}`);
    assert.equal(m.why, '4 failures observed on its 3 nodes');
  });

  it('gangMtbf counts a node registered under a minute ago as one minute old', () => {
    const m = gangMtbf(auto(), [makeNode('a', { failures: 1 }, now)], 8, now);
    assert.ok(Math.abs(m.seconds - 60) < 1e-6);
    assert.equal(m.why, '1 failure observed on its 1 node');
  });

  it('gangMtbf without failures: the hint, else the assumed rate × GPUs (at least one)', () => {
    assert.deepEqual(gangMtbf(auto({ mtbfHint: '90m' }), [makeNode('a', { failures: 0 })], 8, now), { seconds: 5400, why: 'mtbfHint (no failures observed yet)' });
    const m = gangMtbf(auto(), [], 64, now);
    assert.equal(m.seconds, 3600 / (DEFAULT_FAILURES_PER_GPU_HOUR * 64));
    assert.match(m.why, /× 64 GPUs$/);
    const zero = gangMtbf(auto(), [], 0, now);
    assert.equal(zero.seconds, 3600 / DEFAULT_FAILURES_PER_GPU_HOUR);
    assert.match(zero.why, /× 1 GPU$/);
    const half = gangMtbf(auto(), [], 0.5, now);
    assert.equal(half.seconds, 3600 / DEFAULT_FAILURES_PER_GPU_HOUR, 'a fraction below one GPU counts as one');
  });

  it(
    'gangMtbf accepts a fractional GPU count above one (shared GPUs: 3 members × 500 milli)',
    () => {
      const m = gangMtbf(auto(), [], 1.5, now);
      assert.ok(Number.isFinite(m.seconds) && m.seconds > 0);
      assert.ok(m.seconds <= 3600 / DEFAULT_FAILURES_PER_GPU_HOUR && m.seconds >= 3600 / (DEFAULT_FAILURES_PER_GPU_HOUR * 2));
    },
  );

  it(
    'a Running gang of shared-GPU members with interval auto is reconciled',
    () => {
      const gang = runningGang({}, { spec: { roles: [{ name: ROLE, replicas: 3, template: { command: ['python3'], resources: { computeMilli: 500 } } }] } });
      const d = reconcile(gang, makeTasks(running(), { gang }), at(10), { policy: makePolicy({ interval: 'auto' }) });
      assert.equal(d.interval?.seconds, FIRST_MEASUREMENT_SECONDS);
    },
  );
});
