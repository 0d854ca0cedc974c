// The placement benchmark's pieces on small synthetic inputs: the openb loaders, each FGD-paper
// baseline's scoring rule on hand-computed cases, k8s4ai's Fragmentation rule, the workload
// tracker, and a tiny end-to-end `bench placement` run on a generated mini trace.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterCache, type NodeInput } from '../src/scheduler/cache/cluster.ts';
import { buildProfile, createFramework, DEFAULT_PROFILE, profileConfig, type ProfileConfig } from '../src/scheduler/framework/profiles.ts';
import type { GangRequest, MemberRequest } from '../src/scheduler/framework/types.ts';
import {
  loadOpenbNodes,
  loadOpenbPods,
  OpenbFormatError,
  openbPodGpuMilli,
  openbPodToGang,
  parseOpenbNodes,
  parseOpenbPods,
  type OpenbPod,
} from '../src/sim/openb.ts';
import { dotProductScore } from '../src/scheduler/plugins/dotprod/index.ts';
import { bestFitScore } from '../src/scheduler/plugins/bestfit/index.ts';
import { packingScore } from '../src/scheduler/plugins/gpupacking/index.ts';
import { affinityTag, clusteringScore } from '../src/scheduler/plugins/gpuclustering/index.ts';
import { fgdScore } from '../src/scheduler/plugins/fgd/index.ts';
import { FragModel, WorkloadTracker, typicalPods, type TargetPod } from '../src/scheduler/plugins/fgd/frag.ts';
import { DisplacementModel, StrandingModel } from '../src/scheduler/plugins/fragmentation/index.ts';
import { capacityMilli, prepareArrivals, roundHalfEven } from '../bench/lib/placement-core.ts';
import { readPublished, renderPlacementTable, runPlacementBench, POLICIES } from '../bench/placement.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function gpuNode(name: string, gpus: number, cpuMilli = 64_000, memoryGiB = 256, model = 'T4'): NodeInput {
  return {
    name,
    cpuMilli,
    memoryBytes: memoryGiB * GiB,
    devices: Array.from({ length: gpus }, (_, index) => ({ index, uuid: `${name}-gpu${index}`, className: model, memoryBytes: 16 * GiB })),
  };
}

function pod(name: string, cpuMilli: number, numGpu: number, gpuMilli: number, memoryMib = 1024, gpuSpec: string[] = []): OpenbPod {
  return { name, cpuMilli, memoryMib, numGpu, gpuMilli, gpuSpec, line: 0 };
}

function cacheOf(nodes: NodeInput[]): ClusterCache {
  const cache = new ClusterCache();
  for (const n of nodes) cache.upsertNode(n);
  return cache;
}

/** Takes GPU thousandths (and CPU) on a node, as a placed pod would. */
function occupy(cache: ClusterCache, node: string, milli: number[], cpuMilli = 0, id = `pre/${node}/${milli.join('-')}/${cpuMilli}`): void {
  const devices = milli.flatMap((m, index) => (m > 0 ? [{ index, uuid: `${node}-gpu${index}`, whole: m === 1000, milli: m, memoryBytes: m === 1000 ? 16 * GiB : 0 }] : []));
  const share = milli.find((m) => m > 0 && m < 1000);
  const member: MemberRequest = { id: 'pod-0', role: 'pod', index: 0, gpus: share ? 0 : milli.filter((m) => m === 1000).length, gpuMilli: share ?? 0, vramBytes: 0, cpuMilli, memoryBytes: 0 };
  cache.reserve(id, { member, node, devices, cpuMilli, memoryBytes: 0 });
}

// ---- openb loaders --------------------------------------------------------------------------

describe('openb loaders', () => {
  const NODES = 'sn,cpu_milli,memory_mib,gpu,model\nn-0,64000,262144,2,P100\nn-1,96000,393216,8,G2\nn-2,32000,262144,0,\n';
  const PODS =
    'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n' +
    'p-0,12000,16384,1,1000,,LS,Running,0,100,0\n' +
    'p-1,6000,12288,1,460,,LS,Running,5,,6\n' +
    'p-2,8000,30517,0,0,,BE,Running,7,9,7\n' +
    'p-3,88000,393216,8,1000,V100M16|V100M32,LS,Running,1,2,1\n' +
    'p-4,4000,1024,1,1500,,BE,Running,1,2,1\n';

  test('nodes: one device per GPU of the model, flat topology, memory from the model', () => {
    const nodes = parseOpenbNodes(NODES, 'n.csv');
    assert.equal(nodes.length, 3);
    assert.deepEqual(
      nodes.map((n) => [n.name, n.cpuMilli, n.memoryBytes / MiB, n.devices.length, n.devices[0]?.className, n.leaf]),
      [
        ['n-0', 64000, 262144, 2, 'P100', undefined],
        ['n-1', 96000, 393216, 8, 'G2', undefined],
        ['n-2', 32000, 262144, 0, undefined, undefined],
      ],
    );
    assert.equal(nodes[0]!.devices[0]!.memoryBytes, 16 * GiB);
    assert.equal(nodes[1]!.devices[7]!.memoryBytes, 32 * GiB);
    assert.deepEqual(
      nodes[1]!.devices.map((d) => d.index),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    const cache = cacheOf(nodes);
    assert.equal(cache.nodes.get('n-1')!.leaf, 'cluster-leaf', 'the cache puts flat nodes in its synthetic fabric');
    assert.equal(capacityMilli(nodes), 10_000);
  });

  test('pods: every column, optional ones absent or empty, shares clamped to one GPU', () => {
    const pods = parseOpenbPods(PODS, 'p.csv');
    assert.deepEqual(
      pods.map((p) => [p.name, p.cpuMilli, p.memoryMib, p.numGpu, p.gpuMilli, p.gpuSpec.join('|')]),
      [
        ['p-0', 12000, 16384, 1, 1000, ''],
        ['p-1', 6000, 12288, 1, 460, ''],
        ['p-2', 8000, 30517, 0, 0, ''],
        ['p-3', 88000, 393216, 8, 1000, 'V100M16|V100M32'],
        ['p-4', 4000, 1024, 1, 1000, ''],
      ],
    );
    assert.equal(pods[1]!.deletionTime, undefined);
    assert.equal(pods[0]!.deletionTime, 100);
    assert.equal(pods[1]!.scheduledTime, 6);
    assert.equal(pods[2]!.qos, 'BE');
    // The multigpu lists have only the first five columns.
    const short = parseOpenbPods('name,cpu_milli,memory_mib,num_gpu,gpu_milli\nq,1000,10,2,1000\n', 's.csv');
    assert.equal(short[0]!.numGpu, 2);
    assert.equal(short[0]!.creationTime, undefined);
  });

  test('pods become one-member gangs: whole GPUs, a share, CPU only, allowed models', () => {
    const [whole, share, cpu, eight] = parseOpenbPods(PODS, 'p.csv');
    const w = openbPodToGang(whole!, 0).members[0]!;
    assert.deepEqual([w.gpus, w.gpuMilli, w.cpuMilli, w.memoryBytes], [1, 0, 12000, 16384 * MiB]);
    const s = openbPodToGang(share!, 1);
    assert.equal(s.members.length, 1);
    assert.equal(s.minMember, 1);
    assert.deepEqual([s.members[0]!.gpus, s.members[0]!.gpuMilli], [0, 460]);
    assert.deepEqual([openbPodToGang(cpu!, 2).members[0]!.gpus, openbPodToGang(cpu!, 2).members[0]!.gpuMilli], [0, 0]);
    const e = openbPodToGang(eight!, 3).members[0]!;
    assert.deepEqual([e.gpus, e.allowedClasses], [8, ['V100M16', 'V100M32']]);
    assert.notEqual(openbPodToGang(whole!, 0).id, openbPodToGang(whole!, 7).id, 'resampled copies get their own ids');
    assert.deepEqual(
      [whole!, share!, cpu!, eight!].map(openbPodGpuMilli),
      [1000, 460, 0, 8000],
    );
  });

  test('errors name the file, the line and the column', () => {
    const bad = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (err: unknown) => err instanceof OpenbFormatError && pattern.test(err.message));
    bad(() => parseOpenbPods('name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1000,10,x,0\n', 'pods.csv'), /^pods\.csv:2:4 \(num_gpu\): "x" is not a whole number ≥ 0/);
    bad(() => parseOpenbPods('name,cpu_milli,memory_mib,num_gpu\np,1,1,1\n', 'pods.csv'), /^pods\.csv:1: missing column\(s\) gpu_milli/);
    bad(() => parseOpenbPods('name,cpu_milli,memory_mib,num_gpu,gpu_milli\n\np,,10,1,0\n', 'pods.csv'), /^pods\.csv:3:2 \(cpu_milli\): empty/);
    bad(() => parseOpenbNodes('sn,cpu_milli,memory_mib,gpu,model\nn,-5,1,1,T4\n', 'nodes.csv'), /^nodes\.csv:2:2 \(cpu_milli\): "-5"/);
    bad(() => parseOpenbNodes('sn,cpu_milli,memory_mib,gpu,model\nn,1,1,2,\n', 'nodes.csv'), /^nodes\.csv:2:5 \(model\): node "n" has 2 GPU\(s\) but no model/);
    bad(() => parseOpenbNodes('sn,cpu_milli,memory_mib,gpu,model\nn,1,1,0,\nn,1,1,0,\n', 'nodes.csv'), /^nodes\.csv:3:1 \(sn\): node "n" listed twice/);
    bad(() => parseOpenbNodes('sn,cpu_milli,memory_mib,gpu,model\nn,1,1,0,,extra\n', 'nodes.csv'), /^nodes\.csv:2:6: 6 fields, the header has 5/);
  });

  test('loadOpenbNodes and loadOpenbPods read files and name them in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-openb-'));
    try {
      writeFileSync(join(dir, 'nodes.csv'), NODES);
      writeFileSync(join(dir, 'pods.csv'), PODS);
      writeFileSync(join(dir, 'broken_pods.csv'), 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1.5\n');
      assert.equal(loadOpenbNodes(join(dir, 'nodes.csv')).length, 3);
      assert.equal(loadOpenbPods(join(dir, 'pods.csv')).length, 5);
      assert.throws(() => loadOpenbPods(join(dir, 'broken_pods.csv')), /^OpenbFormatError: broken_pods\.csv:2:5 \(gpu_milli\)|broken_pods\.csv:2:5 \(gpu_milli\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- the baselines' scoring rules -----------------------------------------------------------

describe('baseline scoring rules (hand-computed)', () => {
  test('DotProd: ⌊100·(1 − node·pod/2)⌋ over [CPU/128, GPU/8]', () => {
    // (64/128)(8/128) + (2000/8000)(500/8000) = 0.046875; /2 → 0.0234375; 100·0.9765625 → 97
    assert.equal(dotProductScore(64_000, 2000, 8000, 500), 97);
    // A fuller node aligns less with the pod, so it scores higher (it fills up).
    assert.ok(dotProductScore(16_000, 1000, 8000, 500) > dotProductScore(96_000, 8000, 8000, 500));
  });

  test('BestFit: ⌊100·(1 − ½·(cpu left)/128 − ½·(GPU left)/8)⌋ after the pod', () => {
    // ½·56/128 + ½·1500/8000 = 0.3125 → 68
    assert.equal(bestFitScore(64_000, 2000, 8000, 500), 68);
    assert.equal(bestFitScore(8000, 500, 8000, 500), 100, 'a perfect fit');
  });

  test('GpuPacking: shared GPUs first, then free GPUs of a used node, then a free node', () => {
    const share = { count: 1, milli: 500 };
    assert.equal(packingScore([600, 1000], share), 94, 'case 1: 100 − ⌊600/100⌋');
    assert.equal(packingScore([300, 1000], share), 49, 'case 2: 50 − 1 fully free GPU used');
    assert.equal(packingScore([1000, 1000], share), 31, 'case 3: 33 − 2 free GPUs');
    assert.equal(packingScore(Array(8).fill(1000), share), 25);
    assert.equal(packingScore([300, 1000, 1000, 1000], { count: 2, milli: 1000 }), 48);
    assert.equal(packingScore([1000], { count: 1, milli: 1000 }), 32);
    assert.equal(packingScore([500, 500], { count: 2, milli: 1000 }), 0, 'does not fit');
  });

  test('GpuClustering: bands by the node’s pod tags, fuller nodes first within a band', () => {
    assert.equal(affinityTag({ count: 1, milli: 500 }), 'share-gpu');
    assert.equal(affinityTag({ count: 2, milli: 1000 }), '2-gpu');
    assert.equal(affinityTag({ count: 0, milli: 0 }), undefined);
    // ⌊25·(8000 − 3000)/8000⌋ = 15
    assert.equal(clusteringScore('share-gpu', new Map([['share-gpu', 2]]), 3000), 90, 'only this tag: (75, 100]');
    assert.equal(clusteringScore('share-gpu', new Map([['share-gpu', 1], ['1-gpu', 1]]), 3000), 65, 'this tag among others: (50, 75]');
    assert.equal(clusteringScore('share-gpu', new Map(), 8000), 25, 'an idle node: (25, 50]');
    assert.equal(clusteringScore('share-gpu', new Map([['1-gpu', 1]]), 7000), 3, 'other tags only: (0, 25]');
    assert.equal(clusteringScore(undefined, new Map([['1-gpu', 1]]), 7000), 0, 'CPU-only pods score 0');
  });

  const TARGETS: TargetPod[] = [
    { cpuMilli: 1000, gpus: 1, gpuMilli: 500, classes: [], freq: 0.5 },
    { cpuMilli: 4000, gpus: 1, gpuMilli: 1000, classes: [], freq: 0.25 },
    { cpuMilli: 2000, gpus: 0, gpuMilli: 0, classes: [], freq: 0.25 },
  ];

  test('FGD: fragmentation per node against the target workload, score ⌊σ(ΔF/1000)·100⌋', () => {
    const model = new FragModel(TARGETS);
    const cache = cacheOf([gpuNode('n', 2, 8000)]);
    const n = cache.nodes.get('n')!;
    // lefts [300, 1000]: CPU-only ¼·1300 + share ½·300 (GPU 0 too small) + whole ¼·300 = 550
    assert.equal(model.frag(n, 8000, [300, 1000], 0), 550);
    assert.equal(model.frag(n, 7000, [300, 500], 0), 550, 'after a 500 share on GPU 1: the whole spec no longer fits (¼·800)');
    // [500, 1000] → 500; filling GPU 0 → [0, 1000] → 250: ΔF = 250, σ(0.25) → 56
    assert.equal(model.frag(n, 8000, [500, 1000], 0), 500);
    assert.equal(model.frag(n, 7000, [0, 1000], 0), 250);
    assert.equal(fgdScore(500, 250), 56);
    assert.equal(fgdScore(500, 500), 50);
    assert.equal(model.frag(n, 3000, [1000, 1000], 0), 0.25 * 2000 + 0.25 * 2000, 'too little CPU for the whole spec: all of it is a fragment for it');
    // A GPU model the spec cannot use: everything is a fragment for it.
    const typed = new FragModel([{ cpuMilli: 1000, gpus: 1, gpuMilli: 1000, classes: ['A100'], freq: 1 }]);
    assert.equal(typed.frag(n, 8000, [1000, 1000], 0), 2000);
  });

  test('FGD target workload: popular specs covering ≥ 95% of the pods, renormalised', () => {
    const A = { cpuMilli: 1000, gpus: 1, gpuMilli: 500, classes: [] };
    const B = { cpuMilli: 2000, gpus: 1, gpuMilli: 1000, classes: [] };
    const C = { cpuMilli: 3000, gpus: 0, gpuMilli: 0, classes: [] };
    const D = { cpuMilli: 500, gpus: 2, gpuMilli: 1000, classes: [] };
    const all = typicalPods([[A, 5], [B, 3], [C, 1], [D, 1]]);
    assert.equal(all.length, 4, '90% after three specs: the fourth is needed for 95%');
    assert.deepEqual(
      all.map((t) => t.cpuMilli),
      [1000, 2000, 3000, 500],
      'ties in count: the larger spec first',
    );
    const top = typicalPods([[A, 5], [B, 3], [C, 1], [D, 1]], 80);
    assert.deepEqual(
      top.map((t) => t.freq),
      [5 / 8, 3 / 8],
    );
  });

  test('through the framework: BestFit takes the tighter node, GpuPacking the shared GPU, FGD the fragment-filling GPU', () => {
    const nodes = [gpuNode('roomy', 8, 96_000), gpuNode('tight', 2, 16_000), gpuNode('used', 2, 64_000)];
    const share = openbPodToGang(pod('p', 2000, 1, 400), 100);
    const placeWith = (profile: string, args: ProfileConfig['args'] = {}) => {
      const cache = cacheOf(nodes);
      occupy(cache, 'used', [500, 0], 2000);
      const r = createFramework(cache, { ...profileConfig(profile), args: { seed: 1, ...args } }).schedule(share);
      return `${r.placement!.members[0]!.node}/${r.placement!.members[0]!.devices[0]!.index}`;
    };
    // BestFit: roomy 100·(1 − ½·94/128 − ½·7600/8000) → 15; tight: ½·14/128 + ½·1600/8000 → 84; used: ½·60/128 + ½·1100/8000 → 69
    assert.equal(placeWith('bestfit'), 'tight/0');
    // GpuPacking: used (case 1: 100 − 5 = 95) over the free nodes (33 − n).
    assert.equal(placeWith('gpupacking'), 'used/0');
    // DotProd: the node whose free resources align least with the pod: tight.
    assert.equal(placeWith('dotprod'), 'tight/0');
    // FGD with a workload of 500-shares and whole GPUs: the 400 share fills used's 500 remnant
    // (a fragment for the 500 spec) rather than breaking a whole GPU.
    assert.equal(placeWith('fgd', { workload: [TARGETS[0]!, TARGETS[1]!] }), 'used/0');
    // k8s4ai does the same without being told the workload.
    assert.equal(placeWith('k8s4ai'), 'used/0');
  });

  test('GpuClustering tags nodes with the pods reserved on them', () => {
    const cache = cacheOf([gpuNode('a', 8, 96_000), gpuNode('b', 8, 96_000)]);
    const fw = createFramework(cache, { ...profileConfig('gpuclustering'), args: { seed: 3 } });
    const first = fw.schedule(openbPodToGang(pod('s1', 1000, 1, 300), 0)).placement!.members[0]!.node;
    // The next share goes to the node that runs only shares: band (75, 100].
    for (let i = 1; i < 5; i++) assert.equal(fw.schedule(openbPodToGang(pod(`s${i + 1}`, 1000, 1, 300), i)).placement!.members[0]!.node, first);
    // A whole-GPU pod avoids it: the other node is idle (25, 50], this one has other tags (0, 25].
    assert.notEqual(fw.schedule(openbPodToGang(pod('w', 1000, 1, 1000), 9)).placement!.members[0]!.node, first);
  });

  test('Random: a uniform pick among feasible nodes, repeatable by seed', () => {
    const nodes = Array.from({ length: 4 }, (_, i) => gpuNode(`n${i}`, 8, 96_000));
    const run = (seed: number) => {
      const fw = createFramework(cacheOf(nodes), { ...profileConfig('random'), args: { seed } });
      return Array.from({ length: 40 }, (_, i) => fw.schedule(openbPodToGang(pod(`p${i}`, 100, 1, 100), i)).placement!.members[0]!.node);
    };
    const a = run(7);
    assert.deepEqual(run(7), a, 'same seed, same picks');
    assert.notDeepEqual(run(8), a, 'another seed, other picks');
    assert.equal(new Set(a).size, 4, 'every node gets picked');
  });

  test('equal scores go to one fixed node order per seed, so ties consolidate', () => {
    const nodes = Array.from({ length: 6 }, (_, i) => gpuNode(`n${i}`, 8, 96_000));
    const fw = createFramework(cacheOf(nodes), { ...profileConfig('gpupacking'), args: { seed: 5 } });
    const picks = Array.from({ length: 8 }, (_, i) => fw.schedule(openbPodToGang(pod(`w${i}`, 100, 1, 1000), i)).placement!.members[0]!.node);
    assert.equal(new Set(picks).size, 1, 'eight whole-GPU pods fill one node');
  });

  test('one plugin instance per profile serves all its extension points', () => {
    const p = buildProfile(profileConfig('gpuclustering'));
    assert.equal(p.reserve[0], p.score[0]!.plugin);
    const d = buildProfile(DEFAULT_PROFILE);
    assert.equal(
      d.preFilter.find((x) => x.name === 'Fragmentation'),
      d.score.find((s) => s.plugin.name === 'Fragmentation')!.plugin,
    );
  });
});

// ---- k8s4ai's rule --------------------------------------------------------------------------

describe('k8s4ai Fragmentation rule', () => {
  const targets: TargetPod[] = [
    { cpuMilli: 1000, gpus: 1, gpuMilli: 500, classes: [], freq: 0.5 },
    { cpuMilli: 4000, gpus: 1, gpuMilli: 1000, classes: [], freq: 0.5 },
  ];
  const cache = cacheOf([gpuNode('n', 2, 8000)]);
  const n = cache.nodes.get('n')!;

  test('displacement: Σ p·size·copies the node can still host, bounded by GPUs, CPU and memory', () => {
    const m = new DisplacementModel(targets);
    assert.equal(m.gpuFreq, 1);
    // total 1500 − ½·500·3 (shares: ⌊500/500⌋ + ⌊1000/500⌋) − ½·1000·1 (one free GPU) = 250
    assert.equal(m.frag(n, 8000, [500, 1000], 64 * GiB), 250);
    // 3000 CPU: no copy of the 4-CPU spec, three of the shares
    assert.equal(m.frag(n, 3000, [500, 1000], 64 * GiB), 1500 - 750);
    const withMemory = new DisplacementModel([{ ...targets[1]!, memoryBytes: 10 * GiB }]);
    assert.equal(withMemory.frag(n, 8000, [1000, 1000], 15 * GiB), 0.5 * 2000 - 0.5 * 1000, 'memory for one copy only');
  });

  test('stranding: GPU thousandths the CPU and memory left cannot feed at the mean ratio', () => {
    const s = new StrandingModel(targets);
    // (½·1000 + ½·4000) / (½·500 + ½·1000) = 10/3 CPU milli per GPU thousandth
    assert.ok(Math.abs(s.cpuPerMilli - 10 / 3) < 1e-12);
    assert.ok(Math.abs(s.frag(n, 3000, [1000, 1000], 0) - (2000 - 900)) < 1e-9);
    assert.equal(s.frag(n, 64_000, [1000, 1000], 0), 0);
  });

  test('a share fills a used GPU; CPU-hungry pods go where CPU is spare; both with no workload given', () => {
    const cache = cacheOf([gpuNode('lean', 2, 12_000), gpuNode('rich', 2, 104_000), gpuNode('big', 8, 96_000)]);
    const fw = createFramework(cache);
    let seq = 0;
    // Teach it the workload the way the control plane does: by the gangs it is asked to place.
    for (let i = 0; i < 20; i++) {
      const g = openbPodToGang(pod(`warm${i}`, 3000, 1, 1000), seq++);
      fw.schedule(g);
      fw.release(g.id);
    }
    occupy(cache, 'big', [600, 0, 0, 0, 0, 0, 0, 0], 1000);
    const share = fw.schedule(openbPodToGang(pod('s', 1000, 1, 300), seq++)).placement!.members[0]!;
    assert.deepEqual([share.node, share.devices[0]!.index], ['big', 0], 'the 300 share goes into the used GPU');
    const hungry = fw.schedule(openbPodToGang(pod('h', 40_000, 1, 1000), seq++)).placement!.members[0]!;
    assert.equal(hungry.node, 'rich', '40 CPUs on "big" would strand its other GPUs');
    const frugal = fw.schedule(openbPodToGang(pod('f', 3000, 1, 1000), seq++)).placement!.members[0]!;
    assert.equal(frugal.node, 'lean', 'a frugal pod uses the CPU-poor node');
  });

  test('the default profile is Fragmentation, TopologyPack, WarmWeights and CheckpointLocality', () => {
    assert.deepEqual(
      DEFAULT_PROFILE.score.map((s) => s.name),
      ['Fragmentation', 'TopologyPack', 'WarmWeights', 'CheckpointLocality'],
    );
    assert.ok(DEFAULT_PROFILE.preFilter.includes('Fragmentation'));
  });

  test('the workload tracker counts each gang once, forgets the oldest, bootstraps from the cache', () => {
    const t = new WorkloadTracker({ window: 3, thresholdPct: 100 });
    const g = (id: string, cpu: number): GangRequest => ({ ...openbPodToGang(pod(id, cpu, 1, 1000), 0), id });
    t.observe(g('a', 1000));
    t.observe(g('a', 1000));
    assert.equal(t.size, 1);
    assert.deepEqual(
      t.targets().map((x) => [x.cpuMilli, x.freq]),
      [[1000, 1]],
    );
    for (const id of ['b', 'c', 'd']) t.observe(g(id, 2000));
    assert.equal(t.size, 3);
    assert.deepEqual(
      t.targets().map((x) => [x.cpuMilli, x.freq]),
      [[2000, 1]],
      'a fell out of the window',
    );
    const cache = cacheOf([gpuNode('n', 2)]);
    occupy(cache, 'n', [1000, 0], 7000, 'running/x');
    const boot = new WorkloadTracker();
    boot.bootstrap(cache);
    assert.equal(boot.size, 1);
    assert.equal(boot.targets()[0]!.gpus, 1);
  });
});

// ---- the benchmark procedure ----------------------------------------------------------------

describe('bench placement', () => {
  test('arrivals: shuffled, resampled up or down to the ratio of GPU capacity, repeatable by seed', () => {
    const pods = Array.from({ length: 20 }, (_, i) => pod(`p${String(i).padStart(2, '0')}`, 1000, 1, i % 2 ? 1000 : 500));
    const cap = 10_000; // 15 000 requested by the 20 pods
    const up = prepareArrivals(pods, cap, 1, 2);
    const total = (xs: OpenbPod[]) => xs.reduce((s, p) => s + openbPodGpuMilli(p), 0);
    assert.ok(total(up) <= 20_000 && total(up) > 20_000 - 1000, `resampled up: ${total(up)}`);
    const down = prepareArrivals(pods, cap, 1, 1);
    assert.ok(total(down) <= 10_000 && down.length < 20, `resampled down: ${total(down)}`);
    assert.deepEqual(prepareArrivals(pods, cap, 1, 2), up);
    assert.notDeepEqual(
      prepareArrivals(pods, cap, 2, 2).map((p) => p.name),
      up.map((p) => p.name),
    );
    assert.equal(roundHalfEven(129.5), 130);
    assert.equal(roundHalfEven(128.5), 128);
    assert.equal(roundHalfEven(99.49), 99);
  });

  test('a tiny end-to-end run of every policy on a generated mini trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-placement-'));
    try {
      const nodeRows = ['sn,cpu_milli,memory_mib,gpu,model'];
      for (let i = 0; i < 10; i++) nodeRows.push(`g-${i},96000,393216,8,G2`);
      for (let i = 0; i < 10; i++) nodeRows.push(`t-${i},104000,524288,2,T4`);
      writeFileSync(join(dir, 'openb_node_list_gpu_node.csv'), `${nodeRows.join('\n')}\n`);
      const shapes = [
        [12000, 49152, 1, 1000],
        [3152, 5600, 1, 810],
        [11908, 47104, 1, 470],
        [12500, 57344, 0, 0],
        [4000, 22888, 1, 320],
        [3152, 5600, 1, 1000],
        [18708, 64512, 1, 1000],
      ];
      const podRows = ['name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec'];
      for (let i = 0; i < 40; i++) {
        const [cpu, mem, n, milli] = shapes[i % shapes.length]!;
        podRows.push(`mini-${String(i).padStart(3, '0')},${cpu},${mem},${n},${milli},`);
      }
      const podsFile = join(dir, 'openb_pod_list_mini.csv');
      writeFileSync(podsFile, `${podRows.join('\n')}\n`);
      writeFileSync(join(dir, 'fgd_expected_allocation.csv'), `workload,sc_policy,tune,seed,total_gpus,100,130\nopenb_pod_list_mini,06-FGD,1.3,42,100,90.5,91.5\nopenb_pod_list_mini,06-FGD,1.3,43,100,91.5,92.5\n`);
      assert.deepEqual(readPublished(dir).get('openb_pod_list_mini|06-FGD'), { alloc100: 91, alloc130: 92, seeds: 2 });

      const { traces } = await runPlacementBench({ nodes: join(dir, 'openb_node_list_gpu_node.csv'), pods: [podsFile], policies: [...POLICIES], seeds: [42, 43], ratio: 1.3, workers: 0 });
      assert.equal(traces.length, 1);
      const t = traces[0]!;
      assert.equal(t.trace, 'openb_pod_list_mini');
      assert.deepEqual(Object.keys(t.policies), [...POLICIES]);
      for (const [name, p] of Object.entries(t.policies)) {
        assert.equal(p.perSeed130.length, 2, name);
        assert.ok(Number.isFinite(p.alloc100) && p.alloc130 > 30 && p.alloc130 <= 100, `${name}: ${p.alloc100} ${p.alloc130}`);
        assert.ok(p.alloc100 <= p.alloc130 + 1e-9, `${name}: allocation does not fall as pods arrive`);
        assert.equal(p.curve.length, 131);
        assert.ok(p.pods > 40, `${name}: resampled up to 130% (${p.pods} pods)`);
      }
      assert.deepEqual(t.policies.fgd!.published, { alloc100: 91, alloc130: 92, seeds: 2 });
      assert.equal(t.policies.k8s4ai!.published, undefined);
      const table = renderPlacementTable(traces, [42, 43]);
      assert.match(table, /openb_pod_list_mini/);
      assert.match(table, /^fgd\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d\s+92\.00\s+[+-]\d+\.\d\d/m);
      assert.match(table, /k8s4ai − fgd at 130%: [+-]\d+\.\d\d points \(ahead on \d\/2 seeds\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
