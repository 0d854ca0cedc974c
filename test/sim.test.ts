// The trace simulator: its clock, pending queue and measurements on a tiny fleet, the
// manifest workload format, the openb replay rules, and `k8s4ai sim` end to end.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLEET_DEMO_PATH, FLEET_SMALL_PATH } from '../src/fleet/index.ts';
import {
  buildCache, clusterFromFleet, clusterFragmentation, lowestFeasibleLevel, parseWorkload, simulate, workloadShapes,
  SimWorkloadError, openbJob, type SimJob,
} from '../src/sim/index.ts';
import { createFramework } from '../src/scheduler/framework/profiles.ts';
import type { GangRequest } from '../src/scheduler/framework/types.ts';

const BIN = fileURLToPath(new URL('../bin/k8s4ai.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../examples/sim/workload.yaml', import.meta.url));

/** A GangSchedulingGroup manifest of `members` × `gpus` H100s, with sim annotations. */
function gang(name: string, o: { members: number; gpus: number; at?: string; duration?: string; required?: string; priority?: number; timeout?: string; repeat?: number; every?: string }): string {
  const ann = [
    o.at ? `    sim.k8s4ai.io/arrival: ${o.at}` : '',
    o.duration ? `    sim.k8s4ai.io/duration: ${o.duration}` : '',
    o.repeat ? `    sim.k8s4ai.io/repeat: "${o.repeat}"` : '',
    o.every ? `    sim.k8s4ai.io/every: ${o.every}` : '',
  ].filter(Boolean);
  return `apiVersion: k8s4ai.io/v1alpha1
kind: GangSchedulingGroup
metadata:
  name: ${name}
${ann.length ? `  annotations:\n${ann.join('\n')}\n` : ''}spec:
${o.priority !== undefined ? `  priority: ${o.priority}\n` : ''}${o.timeout ? `  scheduleTimeout: ${o.timeout}\n` : ''}${o.required ? `  topology: { required: ${o.required} }\n` : ''}  roles:
    - name: w
      replicas: ${o.members}
      template:
        command: ["true"]
        resources: { gpus: ${o.gpus}, acceleratorClassName: h100-sxm-80gb, cpu: 1, memory: 1Gi }
`;
}

const docs = (...parts: string[]) => parts.join('---\n');

describe('simulator on the small fleet (2 leaves × 2 nodes × 8 H100)', () => {
  const cluster = clusterFromFleet(FLEET_SMALL_PATH);

  it('places, queues, retries when capacity frees, and measures waits and allocation exactly', () => {
    const { jobs } = parseWorkload(
      docs(
        gang('all', { members: 4, gpus: 8, at: '0s', duration: '1h' }),
        gang('waits', { members: 1, gpus: 8, at: '10m', duration: '30m' }),
        gang('pair', { members: 2, gpus: 8, at: '2h', duration: '1h', required: 'leaf' }),
        gang('too-big', { members: 5, gpus: 8, at: '0s', duration: '1h' }),
      ),
    );
    const r = simulate({ cluster, jobs, samples: 10 });
    const by = new Map(r.gangs.map((g) => [g.id, g]));
    assert.equal(by.get('default/all')!.state, 'placed');
    assert.equal(by.get('default/all')!.wait, 0);
    const waits = by.get('default/waits')!;
    assert.equal(waits.state, 'placed');
    assert.equal(waits.start, 3600, 'placed when the first gang leaves');
    assert.equal(waits.wait, 3000);
    assert.ok(waits.attempts >= 2);
    const pair = by.get('default/pair')!;
    assert.equal(pair.level, 'leaf');
    assert.equal(pair.leaves, 1);
    assert.equal(pair.lowestLevel, 'leaf');
    assert.equal(pair.withinLowest, true);
    assert.equal(by.get('default/too-big')!.state, 'pending');
    assert.match(by.get('default/too-big')!.reason!, /40/);

    const s = r.summary;
    assert.deepEqual([s.arrived, s.placed, s.failed, s.pending], [4, 3, 0, 1]);
    assert.equal(s.membersPlaced, 7);
    assert.equal(s.waitMeanS, 1000);
    assert.equal(s.allocationPeak, 1);
    // Window: first arrival (0) to last placement (2h): 32 GPUs for 1h, 8 GPUs for 30m, 0, then 16 GPUs at 2h.
    assert.ok(Math.abs(s.allocationMean - (32 * 3600 + 8 * 1800) / (32 * 7200)) < 1e-9);
    assert.equal(s.topology.judged, 2, 'the two multi-member gangs placed');
    assert.equal(s.topology.withinLowestShare, 1);
    assert.equal(s.simulatedS, 3 * 3600);
    assert.ok(r.timeline.length >= 2);
    assert.ok(r.timeline.every((p) => p.allocation >= 0 && p.allocation <= 1 && p.fragmentation !== undefined));
  });

  it('retries pending gangs in queue order: higher priority first, then the older', () => {
    const { jobs } = parseWorkload(
      docs(
        gang('blocker', { members: 4, gpus: 8, at: '0s', duration: '1h' }),
        gang('low-old', { members: 4, gpus: 8, at: '1m', duration: '1h', priority: 0 }),
        gang('high-new', { members: 4, gpus: 8, at: '2m', duration: '1h', priority: 5 }),
      ),
    );
    const r = simulate({ cluster, jobs, samples: 0 });
    const by = new Map(r.gangs.map((g) => [g.id, g]));
    assert.equal(by.get('default/high-new')!.start, 3600);
    assert.equal(by.get('default/low-old')!.start, 7200);
  });

  it('gives up on gangs past their scheduleTimeout, and with failUnplaced on the first miss', () => {
    const { jobs } = parseWorkload(
      docs(
        gang('blocker', { members: 4, gpus: 8, at: '0s', duration: '1h' }),
        gang('patient', { members: 1, gpus: 8, at: '1m', duration: '1h' }),
        gang('impatient', { members: 1, gpus: 8, at: '1m', duration: '1h', timeout: '10m' }),
      ),
    );
    const r = simulate({ cluster, jobs, samples: 0 });
    const by = new Map(r.gangs.map((g) => [g.id, g]));
    assert.equal(by.get('default/patient')!.state, 'placed');
    assert.equal(by.get('default/impatient')!.state, 'failed');
    assert.match(by.get('default/impatient')!.reason!, /gave up/);
    const strict = simulate({ cluster, jobs, samples: 0, failUnplaced: true });
    assert.deepEqual(strict.gangs.map((g) => g.state), ['placed', 'failed', 'failed']);
  });

  it('is deterministic and leaves nothing held once every gang has left', () => {
    const { jobs } = parseWorkload(gang('many', { members: 2, gpus: 4, at: '0s', duration: '17m', repeat: 40, every: '3m' }));
    const a = simulate({ cluster, jobs, samples: 20 });
    const b = simulate({ cluster, jobs, samples: 20 });
    assert.deepEqual(a.gangs.map((g) => [g.start, g.level]), b.gangs.map((g) => [g.start, g.level]));
    assert.equal(a.summary.placed, 40);
    assert.equal(a.timeline.at(-1)!.allocation, 0);
    assert.equal(a.timeline.at(-1)!.running, 0);
  });

  it('the spread baseline ignores topology; k8s4ai keeps a gang inside one node', () => {
    const { jobs } = parseWorkload(
      docs(gang('a', { members: 4, gpus: 1, at: '0s', duration: '1h' }), gang('b', { members: 2, gpus: 2, at: '1m', duration: '1h' })),
    );
    const packed = simulate({ cluster, jobs, samples: 0 });
    assert.deepEqual(packed.gangs.map((g) => [g.level, g.nodes]), [['node', 1], ['node', 1]]);
    assert.equal(packed.summary.topology.withinLowestShare, 1);
    const spread = simulate({ cluster, jobs, samples: 0, profile: 'spread' });
    assert.ok(spread.gangs.every((g) => g.state === 'placed'));
    assert.ok(spread.summary.topology.meanNodes > 1, 'least-allocated spreads members over nodes');
    assert.ok(spread.summary.topology.withinLowestShare < 1);
  });

  it('judges the lowest level that could hold a gang from free GPUs', () => {
    const cache = buildCache(cluster);
    const g = (members: number, gpus: number): GangRequest => parseWorkload(gang('x', { members, gpus })).jobs[0]!.gang;
    assert.equal(lowestFeasibleLevel(cache, g(2, 4)), 'node');
    assert.equal(lowestFeasibleLevel(cache, g(2, 8)), 'leaf');
    assert.equal(lowestFeasibleLevel(cache, g(4, 8)), 'spine');
    assert.equal(lowestFeasibleLevel(cache, g(5, 8)), undefined);
    // One GPU taken on every node: no node has 8 free, 2 × 8 fits nowhere; 2 × 7 fits in a leaf.
    const member = g(1, 1).members[0]!;
    for (const node of cache.nodes.values()) {
      const d = node.devices[0]!;
      cache.reserve(`one/${node.name}`, { member, node: node.name, devices: [{ index: d.index, uuid: d.uuid, whole: true, milli: 1000, memoryBytes: d.memoryBytes }], cpuMilli: 0, memoryBytes: 0 });
    }
    assert.equal(lowestFeasibleLevel(cache, g(2, 8)), undefined);
    assert.equal(lowestFeasibleLevel(cache, g(2, 7)), 'leaf');
  });

  it('measures fragmentation as FGD does: free GPUs a task shape cannot use', () => {
    const cache = buildCache(cluster);
    const shapes = workloadShapes(parseWorkload(gang('x', { members: 1, gpus: 8 })).jobs[0]!.gang.members);
    assert.equal(shapes.length, 1);
    assert.equal(clusterFragmentation(cache, shapes).ratio, 0);
    const fw = createFramework(cache);
    assert.ok(fw.schedule(parseWorkload(gang('one', { members: 1, gpus: 1 })).jobs[0]!.gang).placement);
    const f = clusterFragmentation(cache, shapes);
    assert.equal(f.freeMilli, 31_000);
    assert.equal(f.fragmentedMilli, 7_000, 'the 7 free GPUs of the broken node cannot take an 8-GPU member');
  });
});

describe('manifest workloads', () => {
  it('read sim annotations: arrival, duration, repeat and every; copies are numbered', () => {
    const w = parseWorkload(gang('train', { members: 2, gpus: 8, at: '1h30m', duration: '2h', repeat: 3, every: '10m' }), 'w.yaml');
    assert.deepEqual(w.jobs.map((j) => [j.gang.id, j.arrival, j.duration]), [
      ['default/train-1', 5400, 7200],
      ['default/train-2', 6000, 7200],
      ['default/train-3', 6600, 7200],
    ]);
    assert.equal(w.jobs[0]!.gang.members.length, 2);
    assert.equal(w.jobs[0]!.gang.createdAt, 5400_000);
  });

  it('read a list of entries wrapping manifests, mixed with annotated documents; other kinds are skipped', () => {
    const text = `- at: 0s
  duration: 30m
  manifest:
    apiVersion: k8s4ai.io/v1alpha1
    kind: GangSchedulingGroup
    metadata: { name: listed }
    spec:
      roles: [{ name: w, replicas: 2, template: { command: ["true"], resources: { gpus: 1 } } }]
- at: 600
  repeat: 2
  every: 1m
  manifest:
    apiVersion: k8s4ai.io/v1alpha1
    kind: InferenceService
    metadata: { name: chat, namespace: team-a }
    spec:
      models: [{ name: m }]
      replicas: 2
      membersPerReplica: 2
      template: { command: ["serve"], resources: { gpus: 1 } }
---
apiVersion: k8s4ai.io/v1alpha1
kind: Queue
metadata: { name: q }
spec: {}
---
${gang('annotated', { members: 1, gpus: 1, at: '5m' })}`;
    const w = parseWorkload(text, 'mixed.yaml');
    assert.deepEqual(w.skipped, ['Queue/q']);
    assert.deepEqual(w.jobs.map((j) => [j.gang.id, j.arrival, j.duration ?? null, j.gang.members.length]), [
      ['default/listed', 0, 1800, 2],
      ['default/annotated', 300, null, 1],
      ['team-a/chat-r0-1', 600, null, 2],
      ['team-a/chat-r1-1', 600, null, 2],
      ['team-a/chat-r0-2', 660, null, 2],
      ['team-a/chat-r1-2', 660, null, 2],
    ]);
  });

  it('reject bad input naming the document and the field', () => {
    const bad = (text: string, pattern: RegExp) => {
      assert.throws(() => parseWorkload(text, 'w.yaml'), (err: unknown) => err instanceof SimWorkloadError && pattern.test(err.message));
    };
    bad(gang('x', { members: 1, gpus: 1, at: 'soon' }), /w\.yaml \(document 1\) GangSchedulingGroup\/x: metadata\.annotations\[sim\.k8s4ai\.io\/arrival\]: "soon" is not a duration/);
    bad(gang('x', { members: 1, gpus: 1, repeat: -1 }), /sim\.k8s4ai\.io\/repeat.*positive integer/);
    bad('- at: 0s\n  when: later\n  manifest: {}\n', /\[0\]: when: unknown field/);
    bad('- at: 0s\n', /manifest: required/);
    bad('- manifest: { apiVersion: k8s4ai.io/v1alpha1, kind: Queue, metadata: { name: q } }\n', /must be GangSchedulingGroup or InferenceService/);
    bad('apiVersion: k8s4ai.io/v1alpha1\nkind: GangSchedulingGroup\nmetadata: { name: x }\nspec: { roles: [] }\n', /spec\.roles/);
    bad(docs(gang('twice', { members: 1, gpus: 1 }), gang('twice', { members: 1, gpus: 1 })), /default\/twice is submitted twice/);
  });

  it('the example under examples/sim replays on the demo fleet, every gang placed', () => {
    const w = parseWorkload(readFileSync(EXAMPLE, 'utf8'), EXAMPLE);
    assert.ok(w.jobs.length > 200);
    const r = simulate({ cluster: clusterFromFleet(FLEET_DEMO_PATH), jobs: w.jobs, samples: 20 });
    assert.equal(r.summary.placed + r.summary.failed, r.summary.arrived);
    assert.ok(r.summary.placed > 0.95 * r.summary.arrived);
    assert.equal(r.summary.topology.withinLowestShare, 1);
  });
});

describe('openb replay rules', () => {
  const pod = { name: 'p', cpuMilli: 1000, memoryMib: 1024, numGpu: 1, gpuMilli: 500, gpuSpec: [], line: 2 };
  it('arrive at creation_time and run deletion_time − scheduled_time (or − creation_time)', () => {
    const a: SimJob = openbJob({ ...pod, creationTime: 100, scheduledTime: 160, deletionTime: 1000 }, 0);
    assert.deepEqual([a.arrival, a.duration, a.gang.members[0]!.gpuMilli], [100, 840, 500]);
    const b = openbJob({ ...pod, creationTime: 100, deletionTime: 1000 }, 1);
    assert.equal(b.duration, 900);
    const c = openbJob({ ...pod }, 2);
    assert.deepEqual([c.arrival, c.duration], [0, undefined]);
  });
});

describe('k8s4ai sim', () => {
  it('prints a summary per policy and writes the JSON report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s4ai-sim-'));
    try {
      const workload = join(dir, 'w.yaml');
      writeFileSync(workload, docs(gang('big', { members: 4, gpus: 8, at: '0s', duration: '1h' }), gang('after', { members: 2, gpus: 8, at: '1m', duration: '1h', required: 'leaf' })));
      const json = join(dir, 'out.json');
      const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [BIN, 'sim', '--fleet', 'small', '--workload', workload, '--policy', 'k8s4ai,spread', '--json', json, '--no-progress'], { timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /gangs arrived\s+2\s+2/);
      assert.match(stdout, /waiting time, mean\s+29m30s/);
      const doc = JSON.parse(readFileSync(json, 'utf8'));
      assert.deepEqual(Object.keys(doc.policies), ['k8s4ai', 'spread']);
      const report = doc.policies.k8s4ai;
      assert.equal(report.summary.placed, 2);
      assert.deepEqual(report.gangs.map((g: { id: string; wait: number; leaves: number }) => [g.id, g.wait, g.leaves]), [['default/big', 0, 2], ['default/after', 3540, 1]]);
      assert.ok(report.timeline.length > 0 && 'allocation' in report.timeline[0] && 'fragmentation' in report.timeline[0]);

      const bad = await new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(process.execPath, [BIN, 'sim', '--policy', 'nope', '--no-progress'], { timeout: 60_000 }, (err, _o, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }));
      });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /unknown policy "nope"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
