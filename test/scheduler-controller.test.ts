// The scheduler inside the control plane, on the small fleet (1 spine, 2 leaves × 2 nodes
// × 8 H100 = 32 GPUs): gangs bound whole, with their Tasks on the chosen nodes and
// devices and their status set in one transaction; explanations for gangs that fit
// nowhere; capacity returned when a gang goes; the cache rebuilt from Tasks after a
// restart on the same SQLite data; metrics at /metrics. Registry.transact on its own too.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { conditionOf, deviceConflicts, gangManifest, metricValue, phaseOf, taskSpec, type GangShape } from './helpers/scheduling.ts';
import { waitFor } from './helpers/wait.ts';
import { startControlPlane, type ControlPlane } from '../src/controlplane/controlplane.ts';
import { Event, GangSchedulingGroup, Node, Task } from '../src/api/kinds/index.ts';
import type { KubeObject } from '../src/api/meta.ts';
import type { NodeStatus } from '../src/api/kinds/node.ts';
import { ApiError } from '../src/apiserver/errors.ts';
import { FLEET_SMALL_PATH } from '../src/fleet/index.ts';
import { createLogger } from '../src/lib/logger.ts';
import { databasePath } from '../src/lib/paths.ts';
import type { ClusterCache } from '../src/scheduler/cache/cluster.ts';
import { SchedulingQueue } from '../src/scheduler/controller/index.ts';
import { buildProfile, DEFAULT_PROFILE } from '../src/scheduler/framework/profiles.ts';
import { gangRequest } from '../src/scheduler/objects.ts';

const NS = 'default';
const H100 = 'h100-sxm-80gb';

let t: TestControlPlane;

const registry = () => t.cp.registry;
const getGang = (name: string) => registry().get(GangSchedulingGroup, NS, name);
const tasksOf = async (cp: ControlPlane, gang: string) =>
  (await cp.registry.listAll(Task, NS)).filter((x) => taskSpec(x).gangName === gang).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));

async function createGang(name: string, shape: GangShape, cp: ControlPlane = t.cp): Promise<KubeObject> {
  return cp.registry.create(GangSchedulingGroup, NS, gangManifest(name, shape));
}

async function scheduled(name: string, cp: ControlPlane = t.cp): Promise<KubeObject> {
  return waitFor(`${name} to be Scheduled`, async () => {
    const g = await cp.registry.get(GangSchedulingGroup, NS, name);
    return phaseOf(g) === 'Scheduled' ? g : undefined;
  });
}

async function unschedulable(name: string, cp: ControlPlane = t.cp): Promise<KubeObject> {
  return waitFor(`${name} to be reported Unschedulable`, async () => {
    const g = await cp.registry.get(GangSchedulingGroup, NS, name);
    return conditionOf(g, 'Scheduled')?.reason === 'Unschedulable' ? g : undefined;
  });
}

/** Deletes a gang and waits until its Tasks are gone too (garbage collection). */
async function deleteGang(name: string, cp: ControlPlane = t.cp): Promise<void> {
  await cp.registry.delete(GangSchedulingGroup, NS, name);
  await waitFor(`the Tasks of ${name} to be collected`, async () => (await tasksOf(cp, name)).length === 0);
}

async function metrics(): Promise<string> {
  const res = await t.fetch('/metrics');
  assert.equal(res.status, 200);
  return res.text();
}

const leafOf = async (node: string) => ((await registry().get(Node, undefined, node)).spec as { topologyDomain: string }).topologyDomain;

before(async () => {
  t = await startTestControlPlane({ fleet: FLEET_SMALL_PATH, scheduler: true });
});

after(async () => {
  await t?.stop();
});

describe('the scheduler in the control plane', { timeout: 120_000 }, () => {
  it('explains a gang that fits nowhere, binds none of it, and does not repeat itself', async () => {
    await createGang('big', { replicas: 3, gpus: 8, acceleratorClassName: H100, required: 'leaf' });
    const gang = await unschedulable('big');
    const cond = conditionOf(gang, 'Scheduled')!;
    assert.equal(cond.status, 'False');
    // 32 GPUs free in all, 16 in each leaf: the leaf is what it lacks.
    assert.match(cond.message!, /^needs 24×h100-sxm-80gb within one leaf; the emptiest leaf, leaf-s1-l[12], has 16 free$/);
    assert.equal(phaseOf(gang), 'Pending');
    assert.equal((await tasksOf(t.cp, 'big')).length, 0, 'no member bound');
    const warning = await waitFor('the FailedScheduling event', async () =>
      (await registry().listAll(Event, NS)).find((e) => (e.involvedObject as { name: string }).name === 'big' && e.reason === 'FailedScheduling'),
    );
    assert.equal(warning.type, 'Warning');
    assert.equal(warning.message, cond.message);

    // The cluster changes (a node is relabelled): 'big' is tried again, same verdict, no new write.
    const before = Number(metricValue(await metrics(), 'k8s4ai_scheduler_schedule_attempts_total', { result: 'unschedulable' }));
    await registry().patch(Node, undefined, 'h100-s1-l1-n1', 'merge', { metadata: { labels: { touched: 'yes' } } });
    await waitFor('another attempt at big', async () => Number(metricValue(await metrics(), 'k8s4ai_scheduler_schedule_attempts_total', { result: 'unschedulable' })) > before);
    const again = await getGang('big');
    assert.equal(again.metadata.resourceVersion, gang.metadata.resourceVersion, 'the same reason is not written again');
    const warnings = (await registry().listAll(Event, NS)).filter((e) => (e.involvedObject as { name: string }).name === 'big' && e.reason === 'FailedScheduling');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.count, 1);
    await registry().delete(GangSchedulingGroup, NS, 'big');
  });

  it('binds a gang whole: member Tasks on the chosen nodes and devices, the gang status set', async () => {
    const created = await createGang('pair', { replicas: 2, gpus: 8, acceleratorClassName: H100, required: 'leaf', cpu: '8', memory: '64Gi' });
    const gang = await scheduled('pair');

    const tasks = await tasksOf(t.cp, 'pair');
    assert.deepEqual(tasks.map((x) => x.metadata.name), ['pair-worker-0', 'pair-worker-1']);
    const nodes = tasks.map((x) => taskSpec(x).nodeName!);
    assert.equal(new Set(nodes).size, 2, 'one member per node: 8 GPUs each');
    assert.equal(await leafOf(nodes[0]!), await leafOf(nodes[1]!), 'required: leaf');
    for (const [i, task] of tasks.entries()) {
      const spec = taskSpec(task);
      assert.equal(spec.gangName, 'pair');
      assert.equal(spec.role, 'worker');
      assert.equal(spec.index, i);
      assert.equal(spec.worldSize, 2);
      assert.deepEqual(spec.command, ['python3', 'train.py']);
      assert.deepEqual(spec.env, [{ name: 'ROLE', value: 'worker' }]);
      assert.equal((spec.resources as { gpus: number }).gpus, 8);
      assert.equal((task.status as { phase: string }).phase, 'Bound');
      const owner = task.metadata.ownerReferences?.[0];
      assert.equal(owner?.uid, created.metadata.uid);
      assert.equal(owner?.controller, true);
      // The devices are the node's GPUs, by index and UUID, all eight.
      const node = await registry().get(Node, undefined, spec.nodeName!);
      const gpus = (node.status as NodeStatus).gpus!;
      assert.deepEqual(spec.devices!.map((d) => d.index).sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
      for (const d of spec.devices!) assert.equal(d.uuid, gpus.find((g) => g.index === d.index)!.uuid);
    }

    const status = gang.status as { placements: { taskName: string; nodeName: string; devices: unknown[]; topologyPath: string[] }[]; gpus: number; scheduledTime: string; observedGeneration: number };
    assert.deepEqual(status.placements.map((p) => p.taskName).sort(), ['pair-worker-0', 'pair-worker-1']);
    for (const p of status.placements) {
      const task = tasks.find((x) => x.metadata.name === p.taskName)!;
      assert.equal(p.nodeName, taskSpec(task).nodeName);
      assert.deepEqual(p.devices, taskSpec(task).devices);
      assert.deepEqual(p.topologyPath, ['ib0', 'spine-s1', await leafOf(p.nodeName), p.nodeName]);
    }
    assert.equal(status.gpus, 16);
    assert.ok(status.scheduledTime);
    assert.equal(status.observedGeneration, 1);
    const cond = conditionOf(gang, 'Scheduled')!;
    assert.equal(cond.status, 'True');
    assert.match(cond.message!, new RegExp(`within leaf ${await leafOf(nodes[0]!)}`));

    // FREE on the Nodes follows: 0 on the gang's nodes, 8 elsewhere.
    await waitFor('freeGpus on the Nodes', async () => {
      const all = await registry().listAll(Node);
      const free = (n: KubeObject) => (n.status as NodeStatus).freeGpus ?? (n.status as NodeStatus).gpus!.length;
      return all.every((n) => free(n) === (nodes.includes(n.metadata.name) ? 0 : 8));
    });
    const events = await registry().listAll(Event, NS);
    assert.ok(events.some((e) => (e.involvedObject as { name: string }).name === 'pair' && e.reason === 'Scheduled' && e.type === 'Normal'));
  });

  it('frees everything a deleted gang held, and a waiting gang gets it', async () => {
    // 'pair' holds one leaf; 'filler' takes the other: the cluster is full.
    await createGang('filler', { replicas: 2, gpus: 8, acceleratorClassName: H100, required: 'leaf' });
    await scheduled('filler');
    await createGang('waiter', { gpus: 8 });
    const waiting = await unschedulable('waiter');
    assert.match(conditionOf(waiting, 'Scheduled')!.message!, /needs 8 whole GPUs; the cluster has 0 free/);
    const pairNodes = (await tasksOf(t.cp, 'pair')).map((x) => taskSpec(x).nodeName);

    await registry().delete(GangSchedulingGroup, NS, 'pair');
    const placed = await scheduled('waiter');
    const [task] = await tasksOf(t.cp, 'waiter');
    assert.ok(pairNodes.includes(taskSpec(task!).nodeName), 'the waiter got a node the deleted gang held');
    assert.equal(conditionOf(placed, 'Scheduled')!.status, 'True');
    await waitFor('the deleted gang\'s Tasks to be collected', async () => (await tasksOf(t.cp, 'pair')).length === 0);
    assert.deepEqual(t.cp.scheduler!.cache.holding(`${NS}/pair`), [], 'and the cache holds nothing for it');

    await deleteGang('waiter');
    await deleteGang('filler');
    await waitFor('every GPU free again', async () => t.cp.scheduler!.cache.totals().freeWhole === 32);
  });

  it('binds all or nothing: a member Task that cannot be created leaves the gang unbound', async () => {
    // A Task already has the name the gang's second member would get.
    await registry().create(Task, NS, { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task', metadata: { name: 'blocked-worker-1' }, spec: { command: ['true'] } });
    const errorsBefore = Number(metricValue(await metrics(), 'k8s4ai_scheduler_schedule_attempts_total', { result: 'error' }));
    await createGang('blocked', { replicas: 2, gpus: 4 });
    await waitFor('a failed binding', async () => Number(metricValue(await metrics(), 'k8s4ai_scheduler_schedule_attempts_total', { result: 'error' })) > errorsBefore);
    assert.equal(await registry().tryGet(Task, NS, 'blocked-worker-0'), undefined, 'the first member was not created alone');
    assert.notEqual(phaseOf(await getGang('blocked')), 'Scheduled');
    assert.deepEqual(t.cp.scheduler!.cache.holding(`${NS}/blocked`), [], 'the reservation was given back');
    assert.equal(t.cp.scheduler!.cache.totals().freeWhole, 32);

    // Out of the way: the retry binds it whole.
    await registry().delete(Task, NS, 'blocked-worker-1');
    await scheduled('blocked');
    assert.equal((await tasksOf(t.cp, 'blocked')).length, 2);
    await deleteGang('blocked');
  });

  it('shares one GPU between fractional members and keeps every device given once', async () => {
    await createGang('frac-a', { vram: '20Gi', computeMilli: 500, acceleratorClassName: H100 });
    await scheduled('frac-a');
    await createGang('frac-b', { vram: '20Gi', computeMilli: 500, acceleratorClassName: H100 });
    await scheduled('frac-b');
    const [a] = await tasksOf(t.cp, 'frac-a');
    const [b] = await tasksOf(t.cp, 'frac-b');
    assert.equal(taskSpec(a!).nodeName, taskSpec(b!).nodeName);
    assert.equal(taskSpec(a!).devices![0]!.index, taskSpec(b!).devices![0]!.index);
    assert.deepEqual(taskSpec(a!).devices![0], { index: taskSpec(a!).devices![0]!.index, uuid: taskSpec(a!).devices![0]!.uuid, vram: '20Gi', computeMilli: 500 });
    // The device is full on compute now: a third share goes elsewhere.
    await createGang('frac-c', { vram: '20Gi', computeMilli: 500, acceleratorClassName: H100 });
    await scheduled('frac-c');
    assert.deepEqual(deviceConflicts(await registry().listAll(Task, NS), await registry().listAll(Node)), []);
    for (const g of ['frac-a', 'frac-b', 'frac-c']) await deleteGang(g);
  });

  it('exposes its metrics at /metrics', async () => {
    await createGang('measured', { replicas: 2, gpus: 2 });
    await scheduled('measured');
    const text = await metrics();
    assert.ok(Number(metricValue(text, 'k8s4ai_scheduler_schedule_attempts_total', { result: 'scheduled', profile: 'k8s4ai' })) >= 1);
    assert.ok(Number(metricValue(text, 'k8s4ai_scheduler_scheduling_attempt_duration_seconds_count', { result: 'scheduled', profile: 'k8s4ai' })) >= 1);
    assert.notEqual(metricValue(text, 'k8s4ai_scheduler_scheduling_attempt_duration_seconds_bucket', { result: 'scheduled', profile: 'k8s4ai', le: '0.001' }), undefined);
    assert.notEqual(metricValue(text, 'k8s4ai_scheduler_scheduling_attempt_duration_seconds_bucket', { result: 'scheduled', profile: 'k8s4ai', le: '16.384' }), undefined);
    assert.equal(metricValue(text, 'k8s4ai_scheduler_pending_gangs'), 0, JSON.stringify(t.cp.scheduler!.queue.keys()));
    assert.equal(metricValue(text, 'k8s4ai_scheduler_gpus', { class: H100, state: 'allocated' }), 4);
    assert.equal(metricValue(text, 'k8s4ai_scheduler_gpus', { class: H100, state: 'free' }), 28);
    await deleteGang('measured');
  });
});

describe('Registry.transact', () => {
  // Suspended gangs: the scheduler leaves them alone while these tests write them.
  const suspended = (name: string) => ({ ...gangManifest(name), spec: { ...(gangManifest(name).spec as object), suspend: true } });
  const task = (name: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'k8s4ai.io/v1alpha1', kind: 'Task', metadata: { name }, spec: { command: ['true'], ...extra } });

  it('commits creates and a status update together', async () => {
    const g = await registry().create(GangSchedulingGroup, 'default', suspended('tx-ok'));
    const results = await registry().transact([
      { op: 'create', def: Task, namespace: NS, body: task('tx-ok-1') },
      { op: 'create', def: Task, namespace: NS, body: task('tx-ok-2') },
      { op: 'update', def: GangSchedulingGroup, namespace: NS, name: 'tx-ok', body: { ...g, status: { phase: 'Succeeded' } }, subresource: 'status' },
    ]);
    assert.equal(results.length, 3);
    assert.equal(phaseOf(await getGang('tx-ok')), 'Succeeded');
    assert.ok(await registry().tryGet(Task, NS, 'tx-ok-1'));
    assert.ok(await registry().tryGet(Task, NS, 'tx-ok-2'));
    assert.equal(results[0]!.object.metadata.generation, 1);
    assert.ok(results[0]!.object.metadata.uid);
  });

  it('writes nothing when the gang changed since it was read (Conflict)', async () => {
    const g = await registry().create(GangSchedulingGroup, 'default', suspended('tx-stale'));
    await registry().patch(GangSchedulingGroup, NS, 'tx-stale', 'merge', { metadata: { labels: { touched: 'yes' } } });
    await assert.rejects(
      registry().transact([
        { op: 'create', def: Task, namespace: NS, body: task('tx-stale-1') },
        { op: 'update', def: GangSchedulingGroup, namespace: NS, name: 'tx-stale', body: { ...g, status: { phase: 'Scheduled' } }, subresource: 'status' },
      ]),
      (err: unknown) => err instanceof ApiError && err.reason === 'Conflict',
    );
    assert.equal(await registry().tryGet(Task, NS, 'tx-stale-1'), undefined);
  });

  it('writes nothing when one write is invalid or its name is taken', async () => {
    await assert.rejects(
      registry().transact([
        { op: 'create', def: Task, namespace: NS, body: task('tx-bad-1') },
        { op: 'create', def: Task, namespace: NS, body: task('tx-bad-2', { index: -1 }) },
      ]),
      (err: unknown) => err instanceof ApiError && err.reason === 'Invalid' && /spec\.index/.test(JSON.stringify(err.details ?? err.message)),
    );
    assert.equal(await registry().tryGet(Task, NS, 'tx-bad-1'), undefined);
    await registry().create(Task, NS, task('tx-taken'));
    await assert.rejects(
      registry().transact([
        { op: 'create', def: Task, namespace: NS, body: task('tx-free') },
        { op: 'create', def: Task, namespace: NS, body: task('tx-taken') },
      ]),
      (err: unknown) => err instanceof ApiError && err.reason === 'AlreadyExists' && /tx-taken/.test(err.message),
    );
    assert.equal(await registry().tryGet(Task, NS, 'tx-free'), undefined);
  });
});

describe('the scheduling queue', () => {
  const gang = (name: string, priority: number, created: string, generation = 1) => {
    const obj = { ...gangManifest(name, { priority, gpus: 1 }), metadata: { name, namespace: NS, uid: `uid-${name}`, generation, creationTimestamp: created } };
    return { obj, request: gangRequest(obj) };
  };
  const queueOf = (opts: ConstructorParameters<typeof SchedulingQueue>[2] = {}) => {
    let wakes = 0;
    const less = buildProfile(DEFAULT_PROFILE).queueSort.less;
    const q = new SchedulingQueue(less, () => wakes++, opts);
    return { q, wakes: () => wakes };
  };

  it('takes gangs by priority, then age', () => {
    const { q } = queueOf();
    for (const g of [gang('old-low', 0, '2025-01-01T00:00:00Z'), gang('new-high', 5, '2025-01-03T00:00:00Z'), gang('old-high', 5, '2025-01-02T00:00:00Z')]) q.upsert(g.obj, g.request);
    assert.deepEqual([q.pop()?.key, q.pop()?.key, q.pop()?.key, q.pop()], ['default/old-high', 'default/new-high', 'default/old-low', undefined]);
  });

  it('keeps an unschedulable gang until the cluster or the gang changes, not for its own status writes', () => {
    const { q } = queueOf({ initialUnschedulableBackoffMs: 0 });
    const g = gang('waits', 0, '2025-01-01T00:00:00Z');
    q.upsert(g.obj, g.request);
    q.pop();
    q.done('default/waits', 'unschedulable');
    assert.equal(q.pop(), undefined);
    q.upsert({ ...g.obj, status: { phase: 'Pending' } }, g.request); // its condition written: same generation
    assert.equal(q.pop(), undefined);
    q.moveAllToActive();
    assert.equal(q.pop()?.key, 'default/waits');
    q.done('default/waits', 'unschedulable');
    const edited = gang('waits', 0, '2025-01-01T00:00:00Z', 2);
    q.upsert(edited.obj, edited.request);
    assert.equal(q.pop()?.key, 'default/waits', 'a spec change is tried again');
    q.done('default/waits', 'bound');
    assert.equal(q.size, 0);
  });

  it('turns a burst of cluster changes into one more attempt, after a backoff', async () => {
    const { q } = queueOf({ initialUnschedulableBackoffMs: 50 });
    const g = gang('bursty', 0, '2025-01-01T00:00:00Z');
    q.upsert(g.obj, g.request);
    q.pop();
    q.done('default/bursty', 'unschedulable');
    for (let i = 0; i < 100; i++) q.moveAllToActive();
    assert.equal(q.count('backoff') + q.count('active'), 1);
    await waitFor('the backoff to end', () => q.count('active') === 1);
    assert.equal(q.pop()?.key, 'default/bursty');
    assert.equal(q.pop(), undefined);
    q.close();
  });
});

/** What the cache holds, device by device, for comparing two caches. */
function snapshot(cache: ClusterCache): unknown {
  return [...cache.nodes.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((n) => ({
      name: n.name,
      freeWhole: n.freeWhole,
      cpuFree: n.cpuFree,
      memoryFree: n.memoryFree,
      devices: n.devices.map((d) => ({ index: d.index, milliFree: d.milliFree, memoryFree: d.memoryFree, mig: d.mig?.map((m) => Boolean(m.usedBy)) })),
      domains: n.path.map((p) => [p, cache.domains.get(p)!.freeWhole]),
    }));
}

describe('a restart on the same data', { timeout: 120_000 }, () => {
  it('rebuilds the cache from the Tasks: the same holdings, no device given twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-sched-restart-'));
    const start = () =>
      startControlPlane({
        dataDir: dir,
        port: 0,
        address: '127.0.0.1',
        insecureHttp: true,
        storeUrl: `sqlite://${databasePath(dir)}`,
        fleetFile: FLEET_SMALL_PATH,
        logger: createLogger({ level: 'warn', file: join(dir, 'log') }),
      });
    let cp: ControlPlane | undefined = await start();
    try {
      await createGang('r-leaf', { replicas: 2, gpus: 8, acceleratorClassName: H100, required: 'leaf', cpu: '16', memory: '100Gi' }, cp);
      await createGang('r-ones', { replicas: 3, gpus: 1 }, cp);
      await createGang('r-frac', { replicas: 2, vram: '30Gi', computeMilli: 250 }, cp);
      for (const g of ['r-leaf', 'r-ones', 'r-frac']) await scheduled(g, cp);
      const before = snapshot(cp.scheduler!.cache);
      const tasksBefore = (await cp.registry.listAll(Task, NS)).map((x) => `${x.metadata.name}@${x.metadata.resourceVersion}`).sort();
      await cp.close();
      cp = undefined;

      cp = await start();
      assert.deepEqual(snapshot(cp.scheduler!.cache), before, 'the rebuilt cache holds exactly what was held');
      assert.deepEqual((await cp.registry.listAll(Task, NS)).map((x) => `${x.metadata.name}@${x.metadata.resourceVersion}`).sort(), tasksBefore, 'bound gangs are not bound again');

      // Fill every GPU still wholly free: it all fits, and no device is given twice.
      const free = cp.scheduler!.cache.totals().freeWhole;
      assert.equal(free, 32 - 16 - 3 - 1);
      await createGang('r-fill', { replicas: free, gpus: 1 }, cp);
      await scheduled('r-fill', cp);
      await createGang('r-more', { gpus: 1 }, cp);
      await unschedulable('r-more', cp);
      assert.deepEqual(deviceConflicts(await cp.registry.listAll(Task, NS), await cp.registry.listAll(Node)), []);
    } finally {
      await cp?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
