// The node lifecycle controller (src/controllers/nodelifecycle.ts) against the real control
// plane on a memory store: a Node whose heartbeats stopped turns Ready=Unknown, its failure
// is counted once and its unfinished Tasks fail with reason NodeLost; check() is called with
// a `now` of our choosing, so nothing waits for the grace period. And the WorkQueue
// (src/controllers/workqueue.ts) the lifecycle controllers run on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { waitFor } from './helpers/wait.ts';
import { Event, Node, Task } from '../src/api/kinds/index.ts';
import type { Condition, KubeObject } from '../src/api/meta.ts';
import { isNodeReady, type NodeStatus } from '../src/api/kinds/node.ts';
import { timestamp } from '../src/apiserver/registry.ts';
import { createLogger } from '../src/lib/logger.ts';
import {
  NodeLifecycleController, AGENT_FINALIZER, REASON_HEARTBEAT_LOST, REASON_NODE_LOST,
} from '../src/controllers/nodelifecycle.ts';
import { WorkQueue } from '../src/controllers/workqueue.ts';

const NS = 'default';
const GRACE_SECONDS = 30;
const OTHER_FINALIZER = 'example.com/keep';
const silent = createLogger({ level: 'silent' });

const readyOf = (node: KubeObject): Condition | undefined => ((node.status as NodeStatus | undefined)?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
const nodeStatus = (node: KubeObject) => (node.status ?? {}) as NodeStatus;
const taskStatus = (task: KubeObject) => (task.status ?? {}) as { phase?: string; reason?: string; message?: string; finishTime?: string };

describe('NodeLifecycleController', () => {
  let t: TestControlPlane;
  let lifecycle: NodeLifecycleController;
  let own: NodeLifecycleController | undefined;
  const heartbeat = new Date(Date.now() - 3_600_000).toISOString();
  /** A moment well past the controller's start + the grace period (set before it starts). */
  let later = 0;

  const registry = () => t.cp.registry;
  const getNode = (name: string) => registry().get(Node, undefined, name);
  const getTask = (name: string) => registry().get(Task, NS, name);

  async function createNode(name: string, status: NodeStatus): Promise<KubeObject> {
    return registry().create(Node, undefined, { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Node', metadata: { name }, spec: {}, status }, { keepStatus: true });
  }

  async function createTask(name: string, nodeName: string, phase: string, finalizers: string[] = [AGENT_FINALIZER]): Promise<KubeObject> {
    return registry().create(Task, NS, {
      apiVersion: 'k8s4ai.io/v1alpha1',
      kind: 'Task',
      metadata: { name, finalizers },
      spec: { gangName: 'g', role: 'worker', nodeName, command: ['python3', 'train.py'] },
      status: { phase },
    }, { keepStatus: true });
  }

  const readyTrue: Condition = { type: 'Ready', status: 'True', reason: 'AgentReady', message: 'the agent posts heartbeats', lastTransitionTime: heartbeat };

  before(async () => {
    t = await startTestControlPlane({ scheduler: false, nodeGraceSeconds: GRACE_SECONDS });
    later = Date.now() + (GRACE_SECONDS + 60) * 1000;
    await createNode('lost', { heartbeatTime: heartbeat, conditions: [readyTrue] });
    await createNode('silent', { conditions: [readyTrue] });
    // An agent whose clock runs an hour behind: its heartbeats look old, but they keep coming.
    await createNode('skewed', { heartbeatTime: new Date(Date.now() - 3_600_000).toISOString(), conditions: [readyTrue] });
    await createTask('lost-running', 'lost', 'Running');
    await createTask('lost-running-2', 'lost', 'Running', [AGENT_FINALIZER, OTHER_FINALIZER]);
    await createTask('lost-done', 'lost', 'Succeeded');
    await createTask('silent-running', 'silent', 'Running');
    // With scheduler: false the control plane runs no lifecycle controllers (ControlPlaneOptions.lifecycle
    // defaults to the scheduler's setting), so `nodeGraceSeconds` alone starts none: start one here.
    lifecycle = t.cp.nodeLifecycle ?? (own = new NodeLifecycleController(registry(), silent, { graceSeconds: GRACE_SECONDS, checkMs: 600_000 }));
    if (own) await own.start();
  });

  after(async () => {
    own?.stop();
    await t?.stop();
  });

  it('judges a heartbeat older than its own start from the start: nothing is lost yet', async () => {
    await lifecycle.check(Date.now());
    const node = await getNode('lost');
    assert.equal(readyOf(node)?.status, 'True');
    assert.equal(nodeStatus(node).failures, undefined);
    assert.equal(taskStatus(await getTask('lost-running')).phase, 'Running');
  });

  it('judges heartbeats by when they change, by its own clock, not by the agent\'s', async () => {
    await registry().patch(Node, undefined, 'skewed', 'merge', { status: { heartbeatTime: new Date(Date.now() - 3_599_000).toISOString() } }, { subresource: 'status' });
    // Almost a grace period from now: an hour-old heartbeat judged by the agent's clock would be lost.
    await waitFor('the new heartbeat to be seen', async () => {
      await lifecycle.check(Date.now() + GRACE_SECONDS * 1000 - 2_000);
      return true;
    });
    const node = await getNode('skewed');
    assert.equal(readyOf(node)?.status, 'True', 'an hour-old timestamp that just changed is a live agent');
    assert.equal(nodeStatus(node).failures, undefined);
  });

  it('past the grace period: Ready Unknown (NodeStatusUnknown), one failure, its Tasks Failed with NodeLost', async () => {
    const silentBefore = await getNode('silent');
    // The informer may trail the writes: check until the node is marked (at once for our own controller).
    const node = await waitFor('node "lost" to be marked lost', async () => {
      await lifecycle.check(later);
      const n = await getNode('lost');
      return readyOf(n)?.reason === REASON_HEARTBEAT_LOST ? n : undefined;
    }, 10_000);

    const ready = readyOf(node)!;
    assert.equal(ready.status, 'Unknown');
    assert.equal(ready.lastTransitionTime, new Date(later).toISOString());
    assert.match(ready.message!, new RegExp(`the last was at ${heartbeat.replace(/[.]/g, '\\.')}`));
    assert.equal(isNodeReady(node), false);
    assert.equal(nodeStatus(node).failures, 1);
    assert.equal(nodeStatus(node).lastFailureTime, timestamp(new Date(later)));
    assert.equal(nodeStatus(node).heartbeatTime, heartbeat, 'the heartbeat itself is left as the agent wrote it');

    for (const name of ['lost-running', 'lost-running-2']) {
      const task = await getTask(name);
      assert.equal(taskStatus(task).phase, 'Failed', name);
      assert.equal(taskStatus(task).reason, REASON_NODE_LOST, name);
      assert.match(taskStatus(task).message ?? '', /node lost stopped posting heartbeats/);
      assert.ok(taskStatus(task).finishTime, `${name} has a finishTime`);
      assert.ok(!(task.metadata.finalizers ?? []).includes(AGENT_FINALIZER), `${name} lost the agent finalizer`);
    }
    assert.deepEqual((await getTask('lost-running-2')).metadata.finalizers, [OTHER_FINALIZER], 'other finalizers stay');

    const done = await getTask('lost-done');
    assert.equal(taskStatus(done).phase, 'Succeeded', 'a finished Task keeps its phase');
    assert.equal(taskStatus(done).reason, undefined);
    assert.ok(!(done.metadata.finalizers ?? []).includes(AGENT_FINALIZER), 'nobody will finalize it either');

    const silentAfter = await getNode('silent');
    assert.equal(silentAfter.metadata.resourceVersion, silentBefore.metadata.resourceVersion, 'a node that never posted a heartbeat is not judged');
    assert.equal(readyOf(silentAfter)?.status, 'True');
    const silentTask = await getTask('silent-running');
    assert.equal(taskStatus(silentTask).phase, 'Running');
    assert.deepEqual(silentTask.metadata.finalizers, [AGENT_FINALIZER]);


    const events = (await registry().listAll(Event, NS)).filter((e) => (e.involvedObject as { name?: string }).name === 'lost');
    assert.deepEqual(events.map((e) => [e.type, e.reason]), [['Warning', 'NodeNotReady']]);
  });

  it('a second check does not count the failure again', async () => {
    const before = await getNode('lost');
    const taskBefore = await getTask('lost-running');
    await lifecycle.check(later + 1_000);
    await lifecycle.check(later + 60_000);
    const node = await getNode('lost');
    assert.equal(nodeStatus(node).failures, 1);
    assert.equal(node.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.equal((await getTask('lost-running')).metadata.resourceVersion, taskBefore.metadata.resourceVersion);
  });

  it('a Task bound to the lost node later is failed on the next check, without counting the node again', async () => {
    await createTask('lost-late', 'lost', 'Bound');
    await waitFor('the late Task to be failed', async () => {
      await lifecycle.check(later + 120_000);
      const task = await getTask('lost-late');
      return taskStatus(task).phase === 'Failed' && !(task.metadata.finalizers ?? []).length ? task : undefined;
    }, 10_000);
    assert.equal(taskStatus(await getTask('lost-late')).reason, REASON_NODE_LOST);
    assert.equal(nodeStatus(await getNode('lost')).failures, 1);
  });

  it('a node that comes back and is lost again counts a second failure', async () => {
    const back = new Date(later + 200_000);
    await registry().patch(Node, undefined, 'lost', 'merge', {
      status: { heartbeatTime: back.toISOString(), conditions: [{ ...readyTrue, lastTransitionTime: back.toISOString() }] },
    }, { subresource: 'status' });
    const again = back.getTime() + (GRACE_SECONDS + 1) * 1000;
    const node = await waitFor('node "lost" to be marked lost again', async () => {
      await lifecycle.check(again);
      const n = await getNode('lost');
      return readyOf(n)?.reason === REASON_HEARTBEAT_LOST ? n : undefined;
    }, 10_000);
    assert.equal(nodeStatus(node).failures, 2);
    assert.equal(nodeStatus(node).lastFailureTime, timestamp(new Date(again)));
  });
});

describe('WorkQueue', () => {
  /** Resolves when `n` calls have been seen (generous timeout). */
  function calls() {
    const seen: { key: string; at: number }[] = [];
    const waiters: { n: number; resolve: () => void }[] = [];
    return {
      seen,
      record(key: string) {
        seen.push({ key, at: Date.now() });
        for (const w of waiters.filter((x) => seen.length >= x.n)) w.resolve();
      },
      until(n: number, timeoutMs = 10_000): Promise<void> {
        if (seen.length >= n) return Promise.resolve();
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`only ${seen.length} of ${n} reconciles within ${timeoutMs} ms`)), timeoutMs);
          waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
        });
      },
    };
  }

  it('a key added many times is reconciled once', async () => {
    const c = calls();
    const q = new WorkQueue(async (key) => { c.record(key); return undefined; }, silent);
    try {
      for (let i = 0; i < 20; i++) q.add('default/a');
      q.add('default/b');
      q.add('default/a');
      await c.until(2);
      await q.idle();
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(c.seen.map((s) => s.key).sort(), ['default/a', 'default/b']);
    } finally {
      q.stop();
    }
  });

  it('a reconcile that returns a time runs again then, not before', async () => {
    const c = calls();
    let again = 0;
    const q = new WorkQueue(async (key) => {
      c.record(key);
      if (c.seen.length === 1) {
        again = Date.now() + 100;
        return again;
      }
      return undefined;
    }, silent);
    try {
      q.add('k');
      await c.until(2);
      assert.ok(c.seen[1]!.at >= again, `ran again at ${c.seen[1]!.at}, asked for ${again}`);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(c.seen.length, 2, 'and not again after that');
    } finally {
      q.stop();
    }
  });

  it('an earlier add wins over a later planned time; a later add does not postpone', async () => {
    const c = calls();
    const q = new WorkQueue(async (key) => { c.record(key); return undefined; }, silent);
    try {
      q.add('k', Date.now() + 60_000);
      q.add('k', Date.now() + 120_000);
      q.add('k');
      await c.until(1);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(c.seen.length, 1);
    } finally {
      q.stop();
    }
  });

  it('a throwing reconcile is retried (with backoff) until it succeeds', async () => {
    const c = calls();
    const q = new WorkQueue(async (key) => {
      c.record(key);
      if (c.seen.length < 3) throw new Error(`transient ${c.seen.length}`);
      return undefined;
    }, silent);
    try {
      q.add('k');
      await c.until(3);
      // Retries back off 200 ms, then 400 ms.
      assert.ok(c.seen[1]!.at - c.seen[0]!.at >= 150, 'the first retry waits');
      assert.ok(c.seen[2]!.at - c.seen[1]!.at >= 350, 'the second waits longer');
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(c.seen.length, 3, 'no retry after success');
    } finally {
      q.stop();
    }
  });

  it('never reconciles a key twice at the same time; an add during a reconcile runs after it', async () => {
    let active = 0;
    let maxActive = 0;
    const c = calls();
    let q!: WorkQueue;
    q = new WorkQueue(async (key) => {
      active++;
      maxActive = Math.max(maxActive, active);
      c.record(key);
      if (c.seen.length === 1) q.add('k');
      await new Promise((r) => setTimeout(r, 20));
      active--;
      return undefined;
    }, silent);
    try {
      q.add('k');
      await c.until(2);
      await q.idle();
      assert.equal(maxActive, 1);
      assert.equal(c.seen.length, 2);
    } finally {
      q.stop();
    }
  });

  it('does nothing once stopped', async () => {
    const c = calls();
    const q = new WorkQueue(async (key) => { c.record(key); return undefined; }, silent);
    q.stop();
    q.add('k');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.seen.length, 0);
    await q.idle();
  });
});
