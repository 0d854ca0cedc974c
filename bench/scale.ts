// `npx k8s4ai bench scale [--nodes 10000] [--json FILE]`: how fast the scheduler core places
// gangs on a large fleet.
//
// The fleet: N nodes × 8 GPUs (one NVLink island of 8 each), 32 nodes a leaf, 16 leaves a
// spine (10,000 nodes: 80,000 GPUs, 313 leaves, 20 spines), built directly as cache inputs.
// The stream: gangs of 1, 2, 4, 8, 16, 64, 128, 512 and 1,024 GPUs (members of up to 8 GPUs:
// a 1,024-GPU gang has 128 members), Poisson arrivals and exponential run times at an offered
// load of 80% of the fleet, replayed by the simulator (`k8s4ai sim`'s engine) so the fleet is
// busy but not full, gangs wait when they do not fit and are retried as others finish.
//
// Measured, for the default profile: members placed per second of scheduler time (every
// Framework.schedule call, the failed attempts of waiting gangs included), and the latency of
// the call that placed each gang, p50/p99 by gang size. A warm-up stream runs first on a
// separate cache so the numbers are those of optimized code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simulate } from '../src/sim/engine.ts';
import { DEFAULT_PROFILE, profileNames } from '../src/scheduler/framework/profiles.ts';
import { commandLine, machine } from './api-main.ts';
import { gangStream, scaleFleet, type GangKind } from './lib/fleetgen.ts';
import { progressBar, note } from './lib/progress.ts';
import { quantile, round } from './lib/stats.ts';
import { argHelpers } from './lib/args.ts';

const USAGE = `usage: npx k8s4ai bench scale [options]

  --nodes N        nodes of 8 GPUs (default 10000)
  --gangs N        gangs in the measured stream (default 20000)
  --warmup N       gangs in the warm-up stream, on a separate cache (default 2000)
  --load X         offered load, a share of the fleet's GPUs (default 0.8)
  --seed N         seed of the stream (default 42)
  --policy NAME    scheduling profile (default ${DEFAULT_PROFILE.name})
  --json FILE      where to write the report (default bench/results/scale.json)
  -h, --help       this text
`;

const { fail, positiveNumber: num, parse } = argHelpers(USAGE);

/** Gang sizes in GPUs and how often each arrives. */
export const SCALE_MIX: readonly GangKind[] = [
  { gpus: 1, weight: 30 },
  { gpus: 2, weight: 12 },
  { gpus: 4, weight: 12 },
  { gpus: 8, weight: 14 },
  { gpus: 16, weight: 10 },
  { gpus: 64, weight: 8 },
  { gpus: 128, weight: 6 },
  { gpus: 512, weight: 5 },
  { gpus: 1024, weight: 3 },
];

export async function run(rest: string[]): Promise<void> {
  const v = parse(rest, {
    nodes: { type: 'string', default: '10000' },
    gangs: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '2000' },
    load: { type: 'string', default: '0.8' },
    seed: { type: 'string', default: '42' },
    policy: { type: 'string', default: DEFAULT_PROFILE.name },
    json: { type: 'string' },
  });
  if (!v) return;
  const nodes = num('nodes', v.nodes!);
  const gangs = num('gangs', v.gangs!);
  const warmup = v.warmup === '0' ? 0 : num('warmup', v.warmup!);
  const load = num('load', v.load!, false);
  const seed = num('seed', v.seed!);
  const policy = v.policy!;
  if (!profileNames().includes(policy)) fail(`--policy: unknown profile "${policy}" (known: ${profileNames().join(', ')})`);
  const jsonFile = v.json ? resolve(v.json) : fileURLToPath(new URL('results/scale.json', import.meta.url));

  const header = { benchmark: 'scale', command: commandLine(), machine: machine(), startedAt: new Date().toISOString() };
  note(`${header.command}\n${header.machine.cores} cores (${header.machine.cpuModel}), node ${header.machine.node}`);
  const built = performance.now();
  const cluster = scaleFleet({ nodes });
  const fleetGpus = nodes * 8;
  const buildMs = performance.now() - built;
  const leaves = cluster.domains.filter((d) => d.level === 'leaf').length;
  const spines = cluster.domains.filter((d) => d.level === 'spine').length;
  note(`fleet: ${nodes} nodes, ${fleetGpus} GPUs, ${leaves} leaves, ${spines} spines (inputs built in ${buildMs.toFixed(0)} ms)`);
  const meanDurationS = 3600;

  if (warmup > 0) {
    const bar = progressBar('warm-up', warmup, 'gangs');
    simulate({ cluster, jobs: gangStream({ kinds: SCALE_MIX, count: warmup, seed: seed + 1000, load, fleetGpus, meanDurationS }), profile: policy, samples: 0, topology: false, onProgress: (d) => bar.update(d) });
    bar.stop();
  }

  const jobs = gangStream({ kinds: SCALE_MIX, count: gangs, seed, load, fleetGpus, meanDurationS });
  const bar = progressBar(`measured (${policy})`, gangs, 'gangs');
  const result = simulate({ cluster, jobs, profile: policy, samples: 0, topology: false, onProgress: (d) => bar.update(d) });
  bar.stop();

  const placed = result.gangs.filter((g) => g.state === 'placed');
  const membersPlaced = placed.reduce((s, g) => s + g.members, 0);
  const bySize = new Map<number, number[]>();
  const attemptsBySize = new Map<number, number[]>();
  for (const [i, g] of result.gangs.entries()) {
    const size = jobs[i]!.gang.members.reduce((s, m) => s + m.gpus, 0);
    if (g.state === 'placed') (bySize.get(size) ?? bySize.set(size, []).get(size)!).push(g.latencyMs!);
    (attemptsBySize.get(size) ?? attemptsBySize.set(size, []).get(size)!).push(g.attempts);
  }
  const sizes = [...new Set(SCALE_MIX.map((k) => k.gpus))].sort((a, b) => a - b);
  const p50: Record<string, number> = {};
  const p99: Record<string, number> = {};
  const maxMs: Record<string, number> = {};
  const rows: string[][] = [];
  for (const size of sizes) {
    const lat = bySize.get(size) ?? [];
    const attempts = attemptsBySize.get(size) ?? [];
    p50[size] = round(quantile(lat, 0.5), 3);
    p99[size] = round(quantile(lat, 0.99), 3);
    maxMs[size] = round(lat.length ? Math.max(...lat) : NaN, 3);
    const members = Math.max(1, Math.ceil(size / 8));
    rows.push([String(size), String(members), String(attempts.length), String(lat.length), (attempts.reduce((a, b) => a + b, 0) / Math.max(1, attempts.length)).toFixed(2), p50[size]!.toFixed(3), p99[size]!.toFixed(3), maxMs[size]!.toFixed(3)]);
  }
  const membersPerSecond = membersPlaced / (result.scheduleMs / 1000);
  const membersPerSecondWall = membersPlaced / (result.wallMs / 1000);
  const doc = {
    ...header,
    finishedAt: new Date().toISOString(),
    options: { nodes, gangs, warmup, load, seed, policy, meanDurationS, mix: SCALE_MIX },
    fleet: { nodes, gpus: fleetGpus, leaves, spines, buildMs: round(buildMs, 1) },
    membersPerSecond: round(membersPerSecond, 0),
    membersPerSecondWall: round(membersPerSecondWall, 0),
    p50MsByGangSize: p50,
    p99MsByGangSize: p99,
    maxMsByGangSize: maxMs,
    gangs: { arrived: result.summary.arrived, placed: result.summary.placed, neverPlaced: result.summary.pending, failed: result.summary.failed },
    membersPlaced,
    attempts: result.attempts,
    scheduleMs: round(result.scheduleMs, 1),
    wallMs: round(result.wallMs, 1),
    allocationMean: round(result.summary.allocationMean, 4),
    allocationPeak: round(result.summary.allocationPeak, 4),
    waitMeanS: round(result.summary.waitMeanS, 1),
  };
  mkdirSync(dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);

  const head = ['gang GPUs', 'members', 'arrived', 'placed', 'attempts/gang', 'p50 ms', 'p99 ms', 'max ms'];
  const table = [head, ...rows];
  const widths = head.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  const shown = relative(process.cwd(), jsonFile);
  const out = [
    `k8s4ai scale benchmark: ${nodes} nodes × 8 GPUs (${fleetGpus} GPUs, ${leaves} leaves, ${spines} spines), profile ${policy}`,
    `command: ${header.command}`,
    `machine: ${header.machine.cores} cores (${header.machine.cpuModel}), node ${header.machine.node}`,
    '',
    `members placed per second (scheduler time): ${Math.round(membersPerSecond).toLocaleString('en-US')}`,
    `members placed per second (wall, whole simulation): ${Math.round(membersPerSecondWall).toLocaleString('en-US')}`,
    `${membersPlaced} members of ${result.summary.placed}/${result.summary.arrived} gangs placed in ${(result.scheduleMs / 1000).toFixed(2)} s of scheduling (${result.attempts} attempts), ${(result.wallMs / 1000).toFixed(2)} s wall`,
    `GPU allocation: mean ${(100 * result.summary.allocationMean).toFixed(1)}%, peak ${(100 * result.summary.allocationPeak).toFixed(1)}%; mean wait ${result.summary.waitMeanS.toFixed(0)} s (virtual)`,
    '',
    ...table.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')),
    '',
    `latency: wall time of the Framework.schedule call that placed the gang`,
    `written: ${shown && !shown.startsWith('..') ? shown : jsonFile}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
