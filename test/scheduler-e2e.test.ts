// Gang placement end to end, through the real kubectl against the control plane `up`
// runs, on the demo fleet (40 nodes, 304 GPUs; H100 leaves of 4 × 8): the 32-GPU example
// gang with `required: leaf` lands whole in one leaf; gangs that cannot fit say why in
// `kubectl describe` (and `k8s4ai describe`); the fractional example's two members share
// one GPU.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { kubectl, type KubectlResult } from './helpers/kubectl.ts';
import { gangManifest, taskSpec } from './helpers/scheduling.ts';
import { waitFor } from './helpers/wait.ts';
import { FLEET_DEMO_PATH } from '../src/fleet/index.ts';
import type { KubeObject } from '../src/api/meta.ts';
import type { NodeStatus } from '../src/api/kinds/node.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'k8s4ai.js');

let t: TestControlPlane;

function k(args: string[], input?: string): Promise<KubectlResult> {
  return kubectl(args, { kubeconfig: t.kubeconfig, home: t.dir, input, cwd: ROOT });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await k(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} exited ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

async function getJson(args: string[]): Promise<{ items: KubeObject[] }> {
  return JSON.parse(await ok(['get', ...args, '-o', 'json'])) as { items: KubeObject[] };
}

/** The Tasks of a gang, once it has `count` of them. */
async function boundTasks(gang: string, count: number): Promise<KubeObject[]> {
  return waitFor(`${count} Tasks of ${gang}`, async () => {
    const tasks = (await getJson(['tasks'])).items.filter((x) => taskSpec(x).gangName === gang);
    return tasks.length === count ? tasks : undefined;
  });
}

function k8s4ai(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, '--kubeconfig', t.kubeconfig, ...args], { timeout: 60_000, env: { ...process.env, HOME: t.dir } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

before(async () => {
  t = await startTestControlPlane({ fleet: FLEET_DEMO_PATH, scheduler: true });
});

after(async () => {
  await t?.stop();
});

describe('gang placement through kubectl on the demo fleet', { timeout: 180_000 }, () => {
  it('binds the 32-GPU example gang within one leaf', async () => {
    assert.match(await ok(['apply', '-f', 'examples/training/gang-32gpu-leaf.yaml']), /gangschedulinggroup\.k8s4ai\.io\/llama-70b-pretrain created/);
    const tasks = await boundTasks('llama-70b-pretrain', 4);
    const nodes = new Map((await getJson(['nodes.k8s4ai.io'])).items.map((n) => [n.metadata.name, n]));
    const used = tasks.map((x) => taskSpec(x).nodeName!);
    assert.equal(new Set(used).size, 4, 'one 8-GPU member per node');
    const leaves = new Set(used.map((n) => (nodes.get(n)!.spec as { topologyDomain: string }).topologyDomain));
    assert.equal(leaves.size, 1, `all members within one leaf, not ${[...leaves].join(', ')}`);
    for (const task of tasks) {
      const spec = taskSpec(task);
      assert.equal(spec.devices!.length, 8);
      assert.equal(nodes.get(spec.nodeName!)!.status && (nodes.get(spec.nodeName!)!.status as NodeStatus).gpus![0]!.acceleratorClassName, 'h100-sxm-80gb');
      assert.equal(spec.worldSize, 4);
    }
    assert.match(await ok(['get', 'gang', 'llama-70b-pretrain']), /^llama-70b-pretrain\s+research\s+32\s+Scheduled\s/m);
    // FREE follows on the nodes it took.
    await waitFor('FREE 0 on the gang\'s nodes', async () => {
      const out = await ok(['get', 'nodes.k8s4ai.io', '--no-headers']);
      return used.every((n) => new RegExp(`^${n}\\s+h100-sxm-80gb\\s+8\\s+0\\s+True\\s`, 'm').test(out));
    });
  });

  it('says why a gang cannot be placed, in kubectl describe and k8s4ai describe', async () => {
    const tooWide = gangManifest('too-wide', { replicas: 5, gpus: 8, acceleratorClassName: 'h100-sxm-80gb', required: 'leaf' });
    const tooBig = gangManifest('too-big', { replicas: 40, gpus: 8, acceleratorClassName: 'h100-sxm-80gb', required: 'leaf' });
    await ok(['apply', '-f', '-'], [tooWide, tooBig].map((o) => stringify(o)).join('---\n'));

    const wide = await waitFor('the reason in kubectl describe', async () => {
      const out = await ok(['describe', 'gang', 'too-wide']);
      return /FailedScheduling/.test(out) ? out : undefined;
    });
    // A leaf holds 32 H100s; one leaf is taken by the example gang, the emptiest has all 32.
    const reason = /needs 40×h100-sxm-80gb within one leaf; the emptiest leaf, leaf-s\d-l\d, has 32 free/;
    assert.match(wide, /Reason:\s+Unschedulable/);
    assert.match(wide, reason, 'the condition message');
    assert.match(wide, /Warning\s+FailedScheduling\s+.*k8s4ai-scheduler\s+needs 40×h100-sxm-80gb within one leaf/, 'the Event');
    const big = await waitFor('the reason for too-big', async () => {
      const out = await ok(['describe', 'gang', 'too-big']);
      return /FailedScheduling/.test(out) ? out : undefined;
    });
    assert.match(big, /needs 320 whole GPUs; the cluster has 272 free/);
    assert.equal((await getJson(['tasks'])).items.filter((x) => ['too-wide', 'too-big'].includes(taskSpec(x).gangName!)).length, 0, 'nothing of them bound');

    const ours = await k8s4ai(['describe', 'gang', 'too-wide']);
    assert.equal(ours.code, 0, ours.stderr);
    assert.match(ours.stdout, /^Conditions:$/m);
    assert.match(ours.stdout, /Scheduled\s+False\s+Unschedulable\s+\S+\s+needs 40×h100-sxm-80gb within one leaf/);
    assert.match(ours.stdout, /Warning\s+FailedScheduling\s+.*k8s4ai-scheduler\s+needs 40×h100-sxm-80gb/);
  });

  it('puts the two fractional notebooks on one GPU', async () => {
    await ok(['apply', '-f', 'examples/fractional/shared-gpu.yaml']);
    const [a] = await boundTasks('notebook-a', 1);
    const [b] = await boundTasks('notebook-b', 1);
    assert.equal(taskSpec(a!).nodeName, taskSpec(b!).nodeName, 'the same node');
    assert.equal(taskSpec(a!).devices!.length, 1);
    assert.equal(taskSpec(a!).devices![0]!.index, taskSpec(b!).devices![0]!.index, 'the same GPU');
    for (const x of [a!, b!]) {
      assert.equal(taskSpec(x).devices![0]!.vram, '20Gi');
      assert.equal(taskSpec(x).devices![0]!.computeMilli, 500);
    }
    assert.match(await ok(['get', 'gangs', 'notebook-a', 'notebook-b', '--no-headers']), /notebook-a\s+default\s+0\.5\s+Scheduled[\s\S]*notebook-b\s+default\s+0\.5\s+Scheduled/);
  });
});
