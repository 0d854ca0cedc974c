// Atomic gang binding under kill -9: a real `k8s4ai up` (SQLite, demo fleet) is killed
// with SIGKILL while it binds gangs, at a different moment each round. What it left on
// disk is read right after each kill, before anything runs again: every gang is wholly
// bound (all its Tasks exist, its status Scheduled with a placement per Task) or wholly
// pending (no Task), and no device is held twice, not even one still held by a Task of a
// gang deleted just before the kill (the last round deletes gangs too). Then `up` restarts on the same data,
// rebuilds its cache from the Tasks and carries on: at the end, the scheduler's view of
// allocated GPUs and the Nodes' FREE match the Tasks exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GangSchedulingGroup, Node, Task, ALL_KINDS } from '../src/api/kinds/index.ts';
import type { KubeObject } from '../src/api/meta.ts';
import type { NodeStatus } from '../src/api/kinds/node.ts';
import { Registry } from '../src/apiserver/registry.ts';
import { openStore } from '../src/store/index.ts';
import { ClientError } from '../src/client/client.ts';
import { databasePath, kubeconfigPath } from '../src/lib/paths.ts';
import { readKubeconfig } from '../src/lib/kubeconfig.ts';
import { Agent, fetch } from 'undici';
import { startUp, type UpProcess } from './helpers/upprocess.ts';
import { conditionOf, deviceConflicts, gangManifest, metricValue, phaseOf, taskSpec, type GangShape } from './helpers/scheduling.ts';
import { waitFor } from './helpers/wait.ts';

const NS = 'default';
const GANGS_PER_ROUND = 30;

/** A mix of shapes: whole-node pairs within a leaf, small multi-GPU gangs, GPU shares. */
function shapeOf(i: number): GangShape {
  if (i % 3 === 0) return { replicas: 2, gpus: 8, acceleratorClassName: 'h100-sxm-80gb', required: 'leaf' };
  if (i % 3 === 1) return { replicas: 3, gpus: 2 };
  return { replicas: 2, vram: '10Gi', computeMilli: 250 };
}

const membersOf = (g: KubeObject) => (g.spec as { roles: { replicas: number }[] }).roles.reduce((s, r) => s + r.replicas, 0);

/** Creates the round's gangs as fast as the server takes them; returns the names acknowledged. */
async function createGangs(up: UpProcess, round: number): Promise<string[]> {
  const names: string[] = [];
  await Promise.all(
    Array.from({ length: GANGS_PER_ROUND }, async (_, i) => {
      const name = `r${round}-g${i}`;
      try {
        await up.client.create(GangSchedulingGroup, NS, gangManifest(name, shapeOf(i)));
        names.push(name);
      } catch (err) {
        if (!(err instanceof ClientError)) throw err; // the server is gone
      }
    }),
  );
  return names;
}

/** Gangs the scheduler has answered for: bound, or told why not. */
async function settledCount(up: UpProcess, names: string[]): Promise<number> {
  const gangs = (await up.client.listAll(GangSchedulingGroup, NS)).items.filter((g) => names.includes(g.metadata.name));
  return gangs.filter((g) => conditionOf(g, 'Scheduled') !== undefined).length;
}

/**
 * Reads the data directory of a stopped `up` directly (one consistent view, nothing
 * running) and checks that every gang is all or nothing and no device is held twice.
 */
async function checkOnDisk(dir: string, deleted: ReadonlySet<string> = new Set()): Promise<{ bound: number; pending: number; orphans: number }> {
  const store = await openStore(`sqlite://${databasePath(dir)}`);
  try {
    const registry = new Registry(store, ALL_KINDS);
    const gangs = await registry.listAll(GangSchedulingGroup, NS);
    const tasks = await registry.listAll(Task, NS);
    const nodes = await registry.listAll(Node);
    let bound = 0;
    let pending = 0;
    for (const gang of gangs) {
      const own = tasks.filter((x) => x.metadata.ownerReferences?.some((r) => r.uid === gang.metadata.uid));
      const name = gang.metadata.name;
      if (phaseOf(gang) === 'Scheduled') {
        bound++;
        assert.equal(own.length, membersOf(gang), `${name} is Scheduled but has ${own.length} of its ${membersOf(gang)} Tasks`);
        const placements = (gang.status as { placements: { taskName: string; nodeName: string; devices: unknown[] }[] }).placements;
        assert.equal(placements.length, own.length, `${name}: one placement per Task`);
        for (const p of placements) {
          const task = own.find((x) => x.metadata.name === p.taskName);
          assert.ok(task, `${name}: the placement names Task ${p.taskName}, which does not exist`);
          assert.equal(taskSpec(task).nodeName, p.nodeName, `${name}: ${p.taskName} is bound where the placement says`);
          assert.deepEqual(taskSpec(task).devices, p.devices, `${name}: ${p.taskName} holds the devices the placement says`);
        }
      } else {
        pending++;
        assert.equal(own.length, 0, `${name} is ${phaseOf(gang) ?? 'pending'} but ${own.length} of its Tasks exist: ${own.map((x) => x.metadata.name).join(', ')}`);
      }
    }
    // Tasks of a gang deleted just before the kill may wait for the garbage collector; they
    // still hold their devices, so nothing else may have been given them.
    let orphans = 0;
    for (const task of tasks) {
      if (gangs.some((g) => task.metadata.ownerReferences?.some((r) => r.uid === g.metadata.uid))) continue;
      assert.ok(deleted.has(taskSpec(task).gangName!), `Task ${task.metadata.name} has no gang`);
      orphans++;
    }
    assert.deepEqual(deviceConflicts(tasks, nodes), [], 'no device held twice');
    return { bound, pending, orphans };
  } finally {
    await store.close();
  }
}

/** /metrics of the `up` serving from `dir`, with its kubeconfig's token and CA. */
async function fetchMetrics(dir: string): Promise<string> {
  const kc = readKubeconfig(kubeconfigPath(dir));
  const dispatcher = new Agent({ connect: { ca: kc.caPem } });
  try {
    const res = await fetch(`${kc.server}/metrics`, { headers: { authorization: `Bearer ${kc.token}` }, dispatcher });
    assert.equal(res.status, 200);
    return await res.text();
  } finally {
    await dispatcher.close();
  }
}

/** Whole-device equivalents the Tasks hold per node: devices with any Task on them. */
function heldDevices(tasks: KubeObject[]): Map<string, Set<number>> {
  const held = new Map<string, Set<number>>();
  for (const task of tasks) {
    const spec = taskSpec(task);
    if (!spec.nodeName) continue;
    const set = held.get(spec.nodeName) ?? new Set<number>();
    for (const d of spec.devices ?? []) set.add(d.index);
    held.set(spec.nodeName, set);
  }
  return held;
}

test('kill -9 while gangs are being bound leaves each gang bound whole or not at all', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-sched-crash-'));
  const all: string[] = [];
  const deleted = new Set<string>();
  let up: UpProcess | undefined;
  try {
    let seenBound = 0;
    for (let round = 0; round < 3; round++) {
      up = await startUp(dir, ['--fleet', 'demo']);
      const u = up;
      // The last round deletes too: a third of the first round's gangs go (their Tasks to
      // the garbage collector, their GPUs to gangs waiting) while new gangs arrive.
      const doomed = round === 2 ? all.filter((n) => n.startsWith('r0-')).slice(0, 10) : [];
      doomed.forEach((n) => deleted.add(n));
      const [names] = await Promise.all([createGangs(u, round), ...doomed.map((n) => u.client.delete(GangSchedulingGroup, NS, n))]);
      assert.equal(names.length, GANGS_PER_ROUND, 'every create acknowledged');
      all.push(...names);
      // When to kill: right after the creates are acknowledged (binding under way), once
      // the first few gangs have an answer, and right away again in the round with deletions.
      if (round === 1) await waitFor('the first answers of round 1', async () => (await settledCount(u, names)) >= 3, 60_000);
      await u.kill9();
      up = undefined;
      const { bound } = await checkOnDisk(dir, deleted);
      if (round < 2) assert.ok(bound >= seenBound, 'a bound gang stays bound across a crash');
      seenBound = bound;
    }

    // Restart: the cache comes back from the Tasks, and scheduling carries on.
    up = await startUp(dir, ['--fleet', 'demo']);
    const u = up;
    const live = all.filter((n) => !deleted.has(n));
    await waitFor('the deleted gangs\' Tasks to be collected', async () => (await u.client.listAll(Task, NS)).items.every((x) => !deleted.has(taskSpec(x).gangName!)), 60_000);
    await waitFor('every gang bound or told why not', async () => (await settledCount(u, live)) === live.length, 120_000);
    // What the scheduler publishes matches the Tasks: the Nodes' FREE, and its own count of
    // allocated GPUs per class. (Read again until they agree: scheduling may still go on.)
    const nodes = (await u.client.listAll(Node, undefined)).items;
    const classOf = new Map(nodes.flatMap((n) => ((n.status as NodeStatus).gpus ?? []).map((g) => [`${n.metadata.name}/${g.index}`, g.acceleratorClassName!] as const)));
    let last = '';
    await waitFor('FREE and the allocated GPUs to match the Tasks', async () => {
      const tasks = (await u.client.listAll(Task, NS)).items;
      const current = (await u.client.listAll(Node, undefined)).items;
      assert.deepEqual(deviceConflicts(tasks, current), []);
      const held = heldDevices(tasks);
      const freeOk = current.every((n) => {
        const status = n.status as NodeStatus;
        return (status.freeGpus ?? status.gpus!.length) === status.gpus!.length - (held.get(n.metadata.name)?.size ?? 0);
      });
      const allocated = new Map<string, number>();
      for (const [node, set] of held) for (const i of set) allocated.set(classOf.get(`${node}/${i}`)!, (allocated.get(classOf.get(`${node}/${i}`)!) ?? 0) + 1);
      const metrics = await fetchMetrics(dir);
      const seen = ['h100-sxm-80gb', 'a100-sxm4-40gb', 'l4'].map((cls) => `${cls}: ${metricValue(metrics, 'k8s4ai_scheduler_gpus', { class: cls, state: 'allocated' })} of ${allocated.get(cls) ?? 0}`);
      last = seen.join(', ');
      return freeOk && ['h100-sxm-80gb', 'a100-sxm4-40gb', 'l4'].every((cls) => metricValue(metrics, 'k8s4ai_scheduler_gpus', { class: cls, state: 'allocated' }) === (allocated.get(cls) ?? 0));
    }, 60_000).catch((err: Error) => {
      throw new Error(`${err.message} (allocated per the scheduler, of per the Tasks: ${last})`);
    });
    assert.equal(await up.interrupt(), 0);
    up = undefined;
    const { bound, pending, orphans } = await checkOnDisk(dir);
    assert.equal(bound + pending, live.length);
    assert.equal(orphans, 0);
    assert.ok(bound > 0 && pending > 0, `the fleet fills up: ${bound} bound, ${pending} waiting`);
  } finally {
    if (up) await up.kill9();
    rmSync(dir, { recursive: true, force: true });
  }
});
