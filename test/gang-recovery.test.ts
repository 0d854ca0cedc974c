// End to end: the example training gang (4 real processes all-reducing over TCP) on the
// control plane with its agent, through failures. A member killed with SIGKILL, a node whose
// heartbeat stops, a preemption notice: each time the gang resumes from its last complete
// checkpoint, runs every step exactly once across its attempts, and ends with the result of
// an uninterrupted run.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CheckpointPolicy, GangSchedulingGroup, Node, Task } from '../src/api/kinds/index.ts';
import { chaosKillNode, chaosPreempt } from '../src/cli/chaos.ts';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { conditionOf, phaseOf } from './helpers/scheduling.ts';
import { waitFor } from './helpers/wait.ts';
import { trainManifests, referenceResult, readTrainLog, range } from './helpers/training.ts';

const FLEET = new URL('../fleet/small.yaml', import.meta.url).pathname;
const STEPS = 240;
const STEP_MS = 40;
const MEMBERS = ['train-demo-worker-0', 'train-demo-worker-1', 'train-demo-worker-2', 'train-demo-worker-3'];

interface GangStatus {
  phase?: string;
  restarts?: number;
  preemptions?: number;
  placements?: { taskName: string; nodeName: string }[];
  lastCheckpoint?: { id: string; step: number; nodes: string[]; locations?: { member: string; node: string }[] };
  lastFailure?: { taskName: string; reason: string; exitCode?: number };
  checkpointRequest?: { id: string; reason: string };
}

let reference = '';
before(async () => {
  reference = await referenceResult(STEPS);
  assert.match(reference, /^result \S+ [0-9a-f]+$/);
});

async function start(t: TestControlPlane, settings: { interval: string; preemptionGracePeriod?: string }): Promise<void> {
  const { policy, gang } = trainManifests({ steps: STEPS, stepMs: STEP_MS, storagePath: join(t.dir, 'checkpoints'), ...settings });
  await t.cp.registry.create(CheckpointPolicy, 'default', policy!);
  await t.cp.registry.create(GangSchedulingGroup, 'default', gang);
}

const gangStatus = async (t: TestControlPlane) => ((await t.cp.registry.get(GangSchedulingGroup, 'default', 'train-demo')).status ?? {}) as GangStatus;

async function log(t: TestControlPlane, task: string, previous = false): Promise<string> {
  const res = await t.fetch(`/apis/k8s4ai.io/v1alpha1/namespaces/default/tasks/${task}/log${previous ? '?previous=true' : ''}`);
  const text = await res.text();
  assert.equal(res.status, 200, `logs of ${task}${previous ? ' (previous)' : ''}: ${text}`);
  return text;
}

async function succeeded(t: TestControlPlane): Promise<GangStatus> {
  return waitFor('train-demo to succeed', async () => {
    const st = await gangStatus(t);
    if (st.phase === 'Failed') throw new Error(`train-demo failed: ${JSON.stringify(st.lastFailure)}`);
    return st.phase === 'Succeeded' ? st : undefined;
  }, 120_000);
}

/**
 * Every member's final log resumes from `restore` and runs the steps after it once each;
 * its earlier attempt ran at least up to the checkpoint; all end with the reference result.
 */
async function checkResumed(t: TestControlPlane, expectRestore?: string): Promise<void> {
  for (const member of MEMBERS) {
    const last = readTrainLog(await log(t, member));
    assert.notEqual(last.restore, 'none', `${member} resumed from a checkpoint`);
    if (expectRestore) assert.equal(last.restore, expectRestore, `${member} resumed from ${expectRestore}`);
    assert.deepEqual(last.steps, range(last.startStep + 1, STEPS), `${member} ran each step after the checkpoint once`);
    const earlier = readTrainLog(await log(t, member, true));
    assert.equal(earlier.restore, 'none', `${member}'s first attempt started from scratch`);
    assert.deepEqual(earlier.steps.slice(0, last.startStep), range(1, last.startStep), `${member}'s first attempt ran every step up to the checkpoint`);
    assert.equal(last.result, reference, `${member} ends with the uninterrupted result`);
  }
}

describe('gang recovery with checkpoints', { timeout: 240_000 }, () => {
  let t: TestControlPlane;
  before(async () => {
    t = await startTestControlPlane({ fleet: FLEET, scheduler: true, agent: { heartbeatSeconds: 1 }, nodeGraceSeconds: 6, logLevel: 'info' });
  });
  after(async () => {
    // Whatever runs still stops with its gang.
    await t.cp.registry.delete(GangSchedulingGroup, 'default', 'train-demo').catch(() => undefined);
    await waitFor('member processes to stop', async () => (await t.cp.registry.list(Task, 'default')).items.length === 0, 30_000).catch(() => undefined);
    await t.stop();
  });

  // Each test starts clean, whatever the one before left.
  beforeEach(() => reset());

  async function reset(): Promise<void> {
    await t.cp.registry.delete(GangSchedulingGroup, 'default', 'train-demo').catch(() => undefined);
    await t.cp.registry.delete(CheckpointPolicy, 'default', 'train-demo').catch(() => undefined);
    await waitFor('the last gang\'s Tasks to go', async () => (await t.cp.registry.list(Task, 'default')).items.length === 0, 30_000);
    await waitFor('the last gang to go', async () => !(await t.cp.registry.tryGet(GangSchedulingGroup, 'default', 'train-demo')), 30_000);
  }

  test('a member killed with SIGKILL: the gang restarts from its last complete checkpoint', async () => {
    await start(t, { interval: '2s' });
    const checkpoint = await waitFor('a complete checkpoint', async () => (await gangStatus(t)).lastCheckpoint, 60_000);
    assert.equal(checkpoint.locations?.length, 4, 'every member\'s part is located');
    const victim = await t.cp.registry.get(Task, 'default', 'train-demo-worker-2');
    const pid = (victim.status as { pid?: number }).pid!;
    assert.ok(pid > 0, 'the Task reports its process id');
    process.kill(pid, 'SIGKILL');

    const st = await succeeded(t);
    assert.equal(st.restarts, 1, 'one restart');
    // The cause is the first member to fail: the one killed (its peers exit 1 right after).
    assert.equal(st.lastFailure?.taskName, 'train-demo-worker-2');
    assert.equal(st.lastFailure?.exitCode, 137, 'SIGKILL reads as exit 137');
    await checkResumed(t);
  });

  test('a node whose heartbeat stops: its gang moves to other nodes and resumes', async () => {
    await start(t, { interval: '2s' });
    const before = await waitFor('a complete checkpoint', async () => {
      const st = await gangStatus(t);
      return st.lastCheckpoint && st.phase === 'Running' ? st : undefined;
    }, 60_000);
    // 4 × 1 GPU fit one 8-GPU node, and the scheduler packs them there: losing it loses the whole gang.
    const lost = before.placements![0]!.nodeName;
    assert.deepEqual([...new Set(before.placements!.map((p) => p.nodeName))], [lost], 'the gang runs on one node');
    await chaosKillNode(lost, { kubeconfig: t.kubeconfig });

    const node = await waitFor(`${lost} to be NotReady`, async () => {
      const n = await t.cp.registry.get(Node, undefined, lost);
      return conditionOf(n, 'Ready')?.status === 'Unknown' ? n : undefined;
    }, 30_000);
    assert.equal((node.status as { failures?: number }).failures, 1, 'the failure is counted for the MTBF');

    const st = await succeeded(t);
    assert.ok((st.restarts ?? 0) >= 1);
    assert.equal(st.lastFailure?.reason, 'NodeLost');
    const nodes = new Set(st.placements!.map((p) => p.nodeName));
    assert.ok(!nodes.has(lost), `the gang left ${lost}: now on ${[...nodes].join(', ')}`);
    await checkResumed(t);
  });

  test('a preemption notice: a just-in-time checkpoint, a clean stop, and the gang resumes from it', async () => {
    // No periodic checkpoint in this run: the only one is the preemption's.
    await start(t, { interval: '1h', preemptionGracePeriod: '30s' });
    await waitFor('train-demo to run', async () => (await gangStatus(t)).phase === 'Running', 60_000);
    // A few steps in, so the checkpoint is not at step 0.
    await waitFor('some steps', async () => (await log(t, 'train-demo-worker-0')).includes('step 20 '), 60_000);
    await chaosPreempt('train-demo', { kubeconfig: t.kubeconfig, namespace: 'default' });

    const stopped = await waitFor('a clean stop', async () => {
      const g = await t.cp.registry.get(GangSchedulingGroup, 'default', 'train-demo');
      return (g.status as GangStatus).preemptions === 1 ? g : undefined;
    }, 60_000);
    const cond = conditionOf(stopped, 'PreemptionNotice');
    assert.equal(cond?.status, 'False');
    assert.match(cond?.message ?? '', /just-in-time checkpoint ckpt-000001/);
    const st = await succeeded(t);
    assert.equal(st.restarts ?? 0, 0, 'a preemption is not a failure');
    assert.equal(st.lastCheckpoint?.id, 'ckpt-000001');
    await checkResumed(t, 'ckpt-000001');
    assert.equal(phaseOf(await t.cp.registry.get(Task, 'default', 'train-demo-worker-0')), 'Succeeded');
  });
});

