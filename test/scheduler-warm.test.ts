// Warm state in the control plane's scheduler, on the small fleet (32 H100s): a VRAMPool
// binds devices and reports its resident models; a gang naming the pool lands on the
// pool's devices and says the weights are warm; deleted and created again it lands on the
// same devices; an InferenceService places each replica as a gang on the pool's devices;
// a pool that fits nowhere says why; a restarted scheduler holds the pool again from its
// status; deleting the pool frees its devices.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { conditionOf, deviceConflicts, gangManifest, phaseOf, taskSpec } from './helpers/scheduling.ts';
import { waitFor } from './helpers/wait.ts';
import { GangSchedulingGroup, InferenceService, Node, Task, VRAMPool } from '../src/api/kinds/index.ts';
import type { KubeObject } from '../src/api/meta.ts';
import { FLEET_SMALL_PATH } from '../src/fleet/index.ts';
import { createLogger } from '../src/lib/logger.ts';
import { poolHolder } from '../src/scheduler/cache/cluster.ts';
import { SchedulerController } from '../src/scheduler/controller/index.ts';

const NS = 'default';
const H100 = 'h100-sxm-80gb';
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const POOL = 'llama';

let t: TestControlPlane;
const registry = () => t.cp.registry;
const cache = () => t.cp.scheduler!.cache;

interface BoundDevice {
  nodeName: string;
  index: number;
  uuid?: string;
  size?: string;
}

const devicesOfTasks = (tasks: KubeObject[]) =>
  tasks.flatMap((x) => (taskSpec(x).devices ?? []).map((d) => `${taskSpec(x).nodeName}/${d.index}`)).sort();

const tasksWhere = async (pred: (t: KubeObject) => boolean) => (await registry().listAll(Task, NS)).filter(pred).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
const tasksOf = (gang: string) => tasksWhere((x) => taskSpec(x).gangName === gang);

function poolManifest(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'k8s4ai.io/v1alpha1', kind: 'VRAMPool', metadata: { name }, spec };
}

/** A gang of `replicas` one-GPU members that use the pool and load the model. */
function poolGang(name: string, replicas: number): KubeObject {
  const gang = gangManifest(name, { replicas, gpus: 1 });
  const role = (gang.spec as { roles: { template: Record<string, unknown> }[] }).roles[0]!;
  role.template.vramPoolName = POOL;
  role.template.model = MODEL;
  return gang;
}

async function boundPool(name: string): Promise<KubeObject> {
  return waitFor(`${name} to be Bound`, async () => {
    const p = await registry().get(VRAMPool, NS, name);
    return phaseOf(p) === 'Bound' ? p : undefined;
  });
}

async function scheduledGang(name: string): Promise<KubeObject> {
  return waitFor(`${name} to be Scheduled`, async () => {
    const g = await registry().get(GangSchedulingGroup, NS, name);
    return phaseOf(g) === 'Scheduled' ? g : undefined;
  });
}

async function deleteGang(name: string): Promise<void> {
  await registry().delete(GangSchedulingGroup, NS, name);
  await waitFor(`the Tasks of ${name} to be collected`, async () => (await tasksOf(name)).length === 0);
}

before(async () => {
  t = await startTestControlPlane({ fleet: FLEET_SMALL_PATH, scheduler: true });
});

after(async () => {
  await t?.stop();
});

describe('warm state: VRAMPools and InferenceServices in the scheduler', { timeout: 120_000 }, () => {
  let poolDevices: string[] = [];

  it('binds a pool and reports the models resident on its devices', async () => {
    await registry().create(VRAMPool, NS, poolManifest(POOL, { devices: 2, acceleratorClassName: H100, sharing: 'Exclusive', models: [{ name: MODEL, size: '16Gi' }] }));
    const pool = await boundPool(POOL);
    const status = pool.status as { boundDevices: BoundDevice[]; residentModels: { name: string; nodeName: string; index: number; loadedTime?: string }[] };
    assert.equal(status.boundDevices.length, 2);
    poolDevices = status.boundDevices.map((d) => `${d.nodeName}/${d.index}`).sort();
    assert.equal(new Set(poolDevices).size, 2, 'two distinct devices');
    for (const d of status.boundDevices) {
      const node = await registry().get(Node, undefined, d.nodeName);
      const gpu = (node.status as { gpus: { index: number; uuid: string }[] }).gpus.find((g) => g.index === d.index)!;
      assert.equal(d.uuid, gpu.uuid);
      assert.ok(d.size, 'the memory held is reported');
    }
    assert.deepEqual(status.residentModels.map((m) => `${m.nodeName}/${m.index}`).sort(), poolDevices);
    for (const m of status.residentModels) {
      assert.equal(m.name, MODEL);
      assert.ok(m.loadedTime);
    }
    assert.equal(conditionOf(pool, 'Bound')?.status, 'True');
    // The cache holds the devices under the pool, tagged, with the weights resident.
    assert.equal(cache().holding(poolHolder(`${NS}/${POOL}`)).length, 2);
    assert.equal(cache().totals().freeWhole, 30);
    for (const key of poolDevices) {
      const [node, index] = key.split('/');
      const dev = cache().nodes.get(node!)!.devices.find((d) => d.index === Number(index))!;
      assert.equal(dev.pool, `${NS}/${POOL}`);
      assert.ok(dev.models.has(MODEL));
    }
  });

  it('places a gang naming the pool on the pool devices, saying the weights are warm', async () => {
    await registry().create(GangSchedulingGroup, NS, poolGang('serve', 2));
    const gang = await scheduledGang('serve');
    const tasks = await tasksOf('serve');
    assert.equal(tasks.length, 2);
    assert.deepEqual(devicesOfTasks(tasks), poolDevices);
    for (const x of tasks) {
      assert.equal(taskSpec(x).vramPoolName, POOL);
      assert.equal(taskSpec(x).model, MODEL);
    }
    const placements = (gang.status as { placements: { reason?: string }[] }).placements;
    for (const p of placements) assert.match(p.reason ?? '', /already resident/);
    assert.deepEqual(deviceConflicts(await registry().listAll(Task, NS), await registry().listAll(Node)), []);
    // The pool's devices are not given twice: a third member finds none free in the pool.
    await registry().create(GangSchedulingGroup, NS, poolGang('serve-extra', 1));
    await waitFor('serve-extra to be reported Unschedulable', async () => conditionOf(await registry().get(GangSchedulingGroup, NS, 'serve-extra'), 'Scheduled')?.status === 'False');
    assert.equal((await tasksOf('serve-extra')).length, 0);
    await registry().delete(GangSchedulingGroup, NS, 'serve-extra');
  });

  it('a restarted scheduler holds the pool again from its status, and the Tasks through it', async () => {
    const again = new SchedulerController({ registry: registry(), log: createLogger({ level: 'silent' }) });
    try {
      await again.start();
      const c = again.cache;
      assert.equal(c.holding(poolHolder(`${NS}/${POOL}`)).length, 2);
      assert.equal(c.totals().freeWhole, 30, 'the pool holds its devices once; its members take nothing more');
      for (const key of poolDevices) {
        const [node, index] = key.split('/');
        const dev = c.nodes.get(node!)!.devices.find((d) => d.index === Number(index))!;
        assert.equal(dev.pool, `${NS}/${POOL}`);
        assert.equal(dev.poolUsers, 1);
        assert.ok(dev.models.has(MODEL));
        assert.equal(dev.milliFree, 0);
      }
    } finally {
      await again.stop();
    }
  });

  it('deleted and created again, the gang lands on the same devices (weights stayed warm)', async () => {
    await deleteGang('serve');
    await registry().create(GangSchedulingGroup, NS, poolGang('serve', 2));
    await scheduledGang('serve');
    assert.deepEqual(devicesOfTasks(await tasksOf('serve')), poolDevices);
    await deleteGang('serve');
  });

  it('places each InferenceService replica as a gang on the pool devices', async () => {
    const svc = await registry().create(InferenceService, NS, {
      apiVersion: 'k8s4ai.io/v1alpha1',
      kind: 'InferenceService',
      metadata: { name: 'llama-svc' },
      spec: {
        models: [{ name: MODEL, size: '16Gi', vramPoolName: POOL }],
        replicas: 2,
        membersPerReplica: 1,
        template: { command: ['vllm', 'serve', MODEL], vramPoolName: POOL, model: MODEL, resources: { cpu: '2', memory: '8Gi' } },
      },
    });
    const ready = await waitFor('llama-svc to have 2 ready replicas', async () => {
      const s = await registry().get(InferenceService, NS, 'llama-svc');
      return (s.status as { readyReplicas?: number } | undefined)?.readyReplicas === 2 ? s : undefined;
    });
    assert.equal((ready.status as { replicas: number }).replicas, 2);
    assert.equal(conditionOf(ready, 'Scheduled')?.status, 'True');
    const tasks = await tasksWhere((x) => x.metadata.labels?.['k8s4ai.io/inferenceservice'] === 'llama-svc');
    assert.deepEqual(tasks.map((x) => taskSpec(x).gangName), ['llama-svc-r0', 'llama-svc-r1']);
    assert.deepEqual(tasks.map((x) => x.metadata.labels?.['k8s4ai.io/replica']), ['0', '1']);
    for (const x of tasks) assert.equal(x.metadata.ownerReferences?.[0]?.uid, svc.metadata.uid);
    assert.deepEqual(devicesOfTasks(tasks), poolDevices);
    await registry().delete(InferenceService, NS, 'llama-svc');
    await waitFor('the service Tasks to be collected', async () => (await tasksWhere((x) => x.metadata.labels?.['k8s4ai.io/inferenceservice'] === 'llama-svc')).length === 0);
  });

  it('says why a pool fits nowhere', async () => {
    await registry().create(VRAMPool, NS, poolManifest('too-big', { devices: 40, acceleratorClassName: H100, sharing: 'Exclusive' }));
    const pool = await waitFor('too-big to be reported unbound', async () => {
      const p = await registry().get(VRAMPool, NS, 'too-big');
      return conditionOf(p, 'Bound')?.status === 'False' ? p : undefined;
    });
    assert.equal(phaseOf(pool), 'Pending');
    assert.match(conditionOf(pool, 'Bound')!.message!, /^needs 40 whole GPUs; the cluster has 30 free$/);
    await registry().delete(VRAMPool, NS, 'too-big');
  });

  it('a gang naming a pool that is not bound waits for it', async () => {
    const gang = poolGang('orphan', 1);
    (gang.spec as { roles: { template: Record<string, unknown> }[] }).roles[0]!.template.vramPoolName = 'nope';
    await registry().create(GangSchedulingGroup, NS, gang);
    const g = await waitFor('orphan to be reported Unschedulable', async () => {
      const x = await registry().get(GangSchedulingGroup, NS, 'orphan');
      return conditionOf(x, 'Scheduled')?.status === 'False' ? x : undefined;
    });
    assert.equal(conditionOf(g, 'Scheduled')!.message, `waits for VRAMPool ${NS}/nope to be bound`);
    await registry().delete(GangSchedulingGroup, NS, 'orphan');
  });

  it('binds an MPS pool to distinct devices, leaving the rest of each device shareable', async () => {
    await registry().create(VRAMPool, NS, poolManifest('mps', { devices: 2, sizePerDevice: '40Gi', computeMilli: 500, acceleratorClassName: H100, sharing: 'MPS', models: [{ name: 'Qwen/Qwen2.5-7B-Instruct', size: '15Gi' }] }));
    const pool = await boundPool('mps');
    const devices = (pool.status as { boundDevices: BoundDevice[] }).boundDevices;
    assert.equal(new Set(devices.map((d) => `${d.nodeName}/${d.index}`)).size, 2, 'one member per device');
    for (const d of devices) assert.equal(d.size, '40Gi');
    const holding = cache().holding(poolHolder(`${NS}/mps`));
    assert.deepEqual(holding.map((p) => [p.devices[0]!.whole, p.devices[0]!.milli, p.devices[0]!.memoryBytes]), [[false, 500, 40 * 2 ** 30], [false, 500, 40 * 2 ** 30]]);
    await registry().delete(VRAMPool, NS, 'mps');
    await waitFor('the mps pool to be released', () => cache().holding(poolHolder(`${NS}/mps`)).length === 0);
  });

  it('deleting the pool frees its devices', async () => {
    await registry().delete(VRAMPool, NS, POOL);
    await waitFor('the pool devices to be free', () => cache().totals().freeWhole === 32 && cache().pools.size === 0);
    assert.equal(cache().holding(poolHolder(`${NS}/${POOL}`)).length, 0);
  });
});
