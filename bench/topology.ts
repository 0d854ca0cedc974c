// `npx k8s4ai bench topology`: how well gangs are kept together, in the simulator, for the
// default profile against `spread` (a topology-blind least-allocated policy: what
// kube-scheduler's default scoring does), on the demo fleet and on the scale fleet.
//
// For every gang of several members (all asking for whole GPUs) the simulator notes, at the
// moment it is placed, the lowest level (node, leaf, spine, fabric) at which one domain had
// enough free GPUs, packed member by member, to hold it, and the level it was actually placed
// at. Reported: the share of those gangs placed within a domain of that lowest level, and the
// mean span (leaves, nodes, and levels above node: node 0, leaf 1, spine 2, fabric 3).
//
// Workloads: seeded Poisson streams at 75% offered load, exponential run times (mean 1h), no
// topology constraints (each policy chooses freely): single-GPU and 4-GPU fillers, and gangs of
// 2–8 one-GPU members, 2 × 4 and 2–8 × 8 GPUs on the demo fleet (up to two leaves), up to
// 128 × 8 = 1,024 GPUs on the scale fleet. Multi-member gangs ask for H100s (the demo fleet's
// A100 and L4 leaves are different machines).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLEET_DEMO_PATH } from '../src/fleet/index.ts';
import { profileNames } from '../src/scheduler/framework/profiles.ts';
import { clusterFromFleet, type SimCluster } from '../src/sim/cluster.ts';
import { simulate, type SimResult } from '../src/sim/engine.ts';
import { commandLine, machine } from './api-main.ts';
import { gangStream, scaleFleet, type GangKind } from './lib/fleetgen.ts';
import { note, progressBar } from './lib/progress.ts';
import { round } from './lib/stats.ts';
import { argHelpers } from './lib/args.ts';

const USAGE = `usage: npx k8s4ai bench topology [options]

  --fleets LIST     demo,scale (default both)
  --policy LIST     profiles to compare (default k8s4ai,spread)
  --gangs N         gangs per workload (default 3000)
  --nodes N         nodes of the scale fleet (default 10000)
  --load X          offered load (default 0.75)
  --seed N          seed (default 42)
  --json FILE       report (default bench/results/topology.json)
  -h, --help        this text
`;

const { fail, positiveNumber: num, parse } = argHelpers(USAGE);

const H100 = 'h100-sxm-80gb';

const DEMO_MIX: GangKind[] = [
  { gpus: 1, weight: 25 },
  { gpus: 4, weight: 10 },
  { gpus: 2, perMember: 1, weight: 8, acceleratorClass: H100 },
  { gpus: 4, perMember: 1, weight: 8, acceleratorClass: H100 },
  { gpus: 8, perMember: 1, weight: 6, acceleratorClass: H100 },
  { gpus: 8, perMember: 4, weight: 8, acceleratorClass: H100 },
  { gpus: 16, weight: 10, acceleratorClass: H100 },
  { gpus: 32, weight: 6, acceleratorClass: H100 },
  { gpus: 64, weight: 3, acceleratorClass: H100 },
];

const SCALE_MIX: GangKind[] = [
  { gpus: 1, weight: 25 },
  { gpus: 4, weight: 8 },
  { gpus: 4, perMember: 1, weight: 6 },
  { gpus: 8, perMember: 4, weight: 8 },
  { gpus: 16, weight: 10 },
  { gpus: 32, weight: 8 },
  { gpus: 64, weight: 8 },
  { gpus: 128, weight: 6 },
  { gpus: 256, weight: 4 },
  { gpus: 512, weight: 3 },
  { gpus: 1024, weight: 2 },
];

interface PolicyResult {
  judged: number;
  withinLowestShare: number;
  meanLeaves: number;
  meanNodes: number;
  meanLevelsAboveNode: number;
  placed: number;
  arrived: number;
  waitMeanS: number;
  allocationMean: number;
  wallMs: number;
  /** Judged gangs by the lowest level that could hold them: placed within it / all. */
  byLowestLevel: Record<string, { gangs: number; within: number; meanLeaves: number }>;
}

function summarize(r: SimResult): PolicyResult {
  const t = r.summary.topology;
  const byLowestLevel: PolicyResult['byLowestLevel'] = {};
  for (const g of r.gangs) {
    if (g.withinLowest === undefined) continue;
    const b = (byLowestLevel[g.lowestLevel!] ??= { gangs: 0, within: 0, meanLeaves: 0 });
    b.gangs++;
    if (g.withinLowest) b.within++;
    b.meanLeaves += g.leaves!;
  }
  for (const b of Object.values(byLowestLevel)) b.meanLeaves = round(b.meanLeaves / b.gangs, 3);
  return {
    judged: t.judged,
    withinLowestShare: round(t.withinLowestShare, 4),
    meanLeaves: round(t.meanLeaves, 3),
    meanNodes: round(t.meanNodes, 3),
    meanLevelsAboveNode: round(t.meanLevelsAboveNode, 3),
    placed: r.summary.placed,
    arrived: r.summary.arrived,
    waitMeanS: round(r.summary.waitMeanS, 1),
    allocationMean: round(r.summary.allocationMean, 4),
    wallMs: round(r.wallMs, 0),
    byLowestLevel,
  };
}

export async function run(rest: string[]): Promise<void> {
  const v = parse(rest, {
    fleets: { type: 'string', default: 'demo,scale' },
    policy: { type: 'string', default: 'k8s4ai,spread' },
    gangs: { type: 'string', default: '3000' },
    nodes: { type: 'string', default: '10000' },
    load: { type: 'string', default: '0.75' },
    seed: { type: 'string', default: '42' },
    json: { type: 'string' },
  });
  if (!v) return;
  const fleets = v.fleets!.split(',').map((s) => s.trim()).filter(Boolean);
  for (const f of fleets) if (f !== 'demo' && f !== 'scale') fail(`--fleets: unknown fleet "${f}" (use demo, scale)`);
  const policies = v.policy!.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of policies) if (!profileNames().includes(p)) fail(`--policy: unknown profile "${p}" (known: ${profileNames().join(', ')})`);
  const gangs = num('gangs', v.gangs!);
  const nodes = num('nodes', v.nodes!);
  const load = num('load', v.load!, false);
  const seed = num('seed', v.seed!);
  const jsonFile = v.json ? resolve(v.json) : fileURLToPath(new URL('results/topology.json', import.meta.url));
  const header = { benchmark: 'topology', command: commandLine(), machine: machine(), startedAt: new Date().toISOString() };
  note(header.command);

  const results: Record<string, Record<string, PolicyResult>> = {};
  const fleetInfo: Record<string, { nodes: number; gpus: number }> = {};
  for (const fleet of fleets) {
    const cluster: SimCluster = fleet === 'demo' ? clusterFromFleet(FLEET_DEMO_PATH) : scaleFleet({ nodes });
    const gpus = cluster.nodes.reduce((s, n) => s + n.devices.length, 0);
    fleetInfo[fleet] = { nodes: cluster.nodes.length, gpus };
    const jobs = gangStream({ kinds: fleet === 'demo' ? DEMO_MIX : SCALE_MIX, count: gangs, seed, load, fleetGpus: gpus, meanDurationS: 3600 });
    results[fleet] = {};
    for (const policy of policies) {
      const bar = progressBar(`${fleet} / ${policy}`, jobs.length, 'gangs');
      const r = simulate({ cluster, jobs, profile: policy, samples: 0, onProgress: (d) => bar.update(d) });
      bar.stop();
      results[fleet]![policy] = summarize(r);
    }
  }

  const doc = { ...header, finishedAt: new Date().toISOString(), options: { fleets, policies, gangs, nodes, load, seed, meanDurationS: 3600, mixes: { demo: DEMO_MIX, scale: SCALE_MIX } }, fleets: fleetInfo, results };
  mkdirSync(dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);

  const head = ['fleet', 'policy', 'judged gangs', 'within lowest', 'mean leaves', 'mean nodes', 'levels above node', 'mean wait', 'GPU alloc'];
  const rows: string[][] = [head];
  for (const [fleet, byPolicy] of Object.entries(results)) {
    for (const [policy, r] of Object.entries(byPolicy)) {
      rows.push([
        `${fleet} (${fleetInfo[fleet]!.gpus} GPUs)`,
        policy,
        String(r.judged),
        `${(100 * r.withinLowestShare).toFixed(1)}%`,
        r.meanLeaves.toFixed(2),
        r.meanNodes.toFixed(2),
        r.meanLevelsAboveNode.toFixed(2),
        `${Math.round(r.waitMeanS)} s`,
        `${(100 * r.allocationMean).toFixed(1)}%`,
      ]);
    }
  }
  const widths = head.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const shown = relative(process.cwd(), jsonFile);
  const out = [
    `k8s4ai topology benchmark: ${gangs} gangs per workload, offered load ${load}, seed ${seed}`,
    `command: ${header.command}`,
    '',
    ...rows.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')),
    '',
    'within lowest: multi-member gangs placed inside one domain of the lowest level (node, leaf, spine, fabric)',
    'that could hold them when they were placed; levels above node: node 0, leaf 1, spine 2, fabric 3.',
    `written: ${shown && !shown.startsWith('..') ? shown : jsonFile}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
