// `npx k8s4ai bench placement`: placement quality against FGD (Weng et al., USENIX ATC'23) on
// the Alibaba openb traces, with the paper's procedure (see lib/placement-core.ts): per seed the
// pods are shuffled and resampled to 130% of the cluster's GPU capacity, then arrive one at a
// time (no departures, a pod that fits nowhere fails for good) and are placed by
// createFramework(cache, policy) — the same framework and profiles `up` uses. Reported: the GPU
// allocation % at 100% and 130% arrived, mean over the seeds, beside the paper's published
// numbers when its expected-results file sits next to the traces.
//
//   npx k8s4ai bench placement [--nodes NODES.csv] [--pods PODS.csv[,PODS2.csv…]] [--all-traces]
//                              [--policy a,b,…] [--seeds 42-51] [--workers N] [--json FILE]
//
// Seeds run in parallel child processes (one per core by default).
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { profileNames } from '../src/scheduler/framework/profiles.ts';
import { commandLine, machine } from './api-main.ts';
import { note, progressBar } from './lib/progress.ts';
import { round } from './lib/stats.ts';
import { runTask, type PlacementTask, type WorkerMessage } from './lib/placement-worker.ts';
import type { RunResult } from './lib/placement-core.ts';
import { argHelpers } from './lib/args.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** The traces live beside the repository: ../shared/data/openb seen from its root. */
export const OPENB_DIR = resolve(REPO, '../shared/data/openb');
export const DEFAULT_NODES = join(OPENB_DIR, 'openb_node_list_gpu_node.csv');
export const DEFAULT_PODS = join(OPENB_DIR, 'openb_pod_list_default.csv');
export const DEFAULT_JSON = join(REPO, 'bench/results/placement.json');
/** The paper's baselines and our default policy, in the order they are reported. */
export const POLICIES = ['random', 'dotprod', 'gpuclustering', 'gpupacking', 'bestfit', 'fgd', 'k8s4ai'] as const;
/** The paper's names for the baselines in its expected-results file. */
const PAPER_POLICY: Record<string, string> = { random: '01-Random', dotprod: '02-DotProd', gpuclustering: '03-GpuClustering', gpupacking: '04-GpuPacking', bestfit: '05-BestFit', fgd: '06-FGD' };
const EXPECTED_FILE = 'fgd_expected_allocation.csv';

const USAGE = `usage: npx k8s4ai bench placement [options]

  --nodes FILE       openb node list (default ../shared/data/openb/openb_node_list_gpu_node.csv
                     beside this repository)
  --pods LIST        openb pod list(s), comma-separated (default …/openb_pod_list_default.csv)
  --all-traces       every openb_pod_list_*.csv in the node list's folder
  --policy LIST      profiles to compare (default ${POLICIES.join(',')})
  --seeds LIST       seeds, e.g. 42-51 or 42,43 (default 42-51)
  --ratio X          resample the pods to X × the GPU capacity (default 1.3)
  --workers N        child processes (default: the number of cores; 0 runs in this process)
  --json FILE        where to write the report (default bench/results/placement.json)
  -h, --help         this text
`;

const { fail, parse } = argHelpers(USAGE);

export interface PlacementBenchOptions {
  nodes: string;
  pods: string[];
  policies: string[];
  seeds: number[];
  ratio: number;
  /** 0: run every task in this process. */
  workers: number;
  /** Progress bar on stderr. */
  progress?: boolean;
}

export interface PolicyReport {
  alloc100: number;
  alloc130: number;
  perSeed100: number[];
  perSeed130: number[];
  /** Standard deviation of perSeed130. */
  sd130: number;
  /** Pods that found no place, mean per seed. */
  failed: number;
  pods: number;
  /** Placement wall time per run, seconds. */
  secondsPerRun: number;
  /** GPU allocation % at arrived 0..130 %, mean over seeds. */
  curve: (number | null)[];
  /** The FGD paper's numbers for this trace and policy (its expected results), when known. */
  published?: { alloc100: number; alloc130: number; seeds: number };
}

export interface TraceReport {
  trace: string;
  file: string;
  policies: Record<string, PolicyReport>;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const sd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};
export const traceName = (file: string) => basename(file).replace(/\.csv$/, '');

/** The paper's mean allocation at 100% and 130% per (trace, policy), from its expected-results CSV. */
export function readPublished(dir: string): Map<string, { alloc100: number; alloc130: number; seeds: number }> {
  const out = new Map<string, { alloc100: number; alloc130: number; seeds: number }>();
  const file = join(dir, EXPECTED_FILE);
  if (!existsSync(file)) return out;
  const [header, ...lines] = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const cols = header!.split(',');
  const [iw, ip, i100, i130] = ['workload', 'sc_policy', '100', '130'].map((c) => cols.indexOf(c));
  if ([iw, ip, i100, i130].some((i) => i! < 0)) return out;
  const acc = new Map<string, number[][]>();
  for (const line of lines) {
    const f = line.split(',');
    const key = `${f[iw!]}|${f[ip!]}`;
    const v = acc.get(key) ?? [];
    v.push([Number(f[i100!]), Number(f[i130!])]);
    acc.set(key, v);
  }
  for (const [key, rows] of acc) out.set(key, { alloc100: round(mean(rows.map((r) => r[0]!))), alloc130: round(mean(rows.map((r) => r[1]!))), seeds: rows.length });
  return out;
}

function parseSeeds(raw: string): number[] {
  const seeds: number[] = [];
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`--seeds: "${part}" is not a seed or a range like 42-51`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new Error(`--seeds: empty range ${part}`);
    for (let s = from; s <= to; s++) seeds.push(s);
  }
  if (!seeds.length) throw new Error('--seeds is empty');
  return [...new Set(seeds)];
}

/** Runs every (trace, policy, seed) and aggregates per trace and policy. */
export async function runPlacementBench(o: PlacementBenchOptions): Promise<{ traces: TraceReport[]; seconds: number }> {
  const tasks: PlacementTask[] = [];
  // The slow policies first, so the processes finish together.
  const weight = (p: string) => (p === 'fgd' || p === 'k8s4ai' ? 0 : 1);
  const policies = [...o.policies].sort((a, b) => weight(a) - weight(b));
  for (const pods of o.pods) for (const policy of policies) for (const seed of o.seeds) tasks.push({ id: tasks.length, nodesPath: o.nodes, podsPath: pods, policy, seed, ratio: o.ratio });
  const results: RunResult[] = new Array(tasks.length);
  const started = performance.now();
  // Progress in pods placed; each task's total is known once it starts (≈ the same per trace).
  const done = new Map<number, number>();
  const totals = new Map<number, number>();
  const guess = 10_000;
  const bar = o.progress ? progressBar(`placement ${tasks.length} runs`, tasks.length * guess, 'pods') : undefined;
  const update = () => {
    if (!bar) return;
    let d = 0;
    let t = 0;
    for (const task of tasks) {
      d += done.get(task.id) ?? 0;
      t += totals.get(task.id) ?? guess;
    }
    bar.update(Math.round((d / t) * tasks.length * guess), { info: `${results.filter(Boolean).length}/${tasks.length} runs` });
  };
  const onProgress = (id: number, d: number, total: number) => {
    done.set(id, d);
    totals.set(id, total);
    update();
  };
  try {
    if (o.workers <= 0) {
      for (const task of tasks) {
        results[task.id] = runTask(task, (d, total) => onProgress(task.id, d, total));
        await new Promise((r) => setImmediate(r));
      }
    } else {
      await runInChildren(tasks, Math.min(o.workers, tasks.length), results, onProgress);
    }
  } finally {
    bar?.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const published = readPublished(dirname(o.nodes));
  const traces: TraceReport[] = o.pods.map((file) => {
    const trace = traceName(file);
    const policiesOut: Record<string, PolicyReport> = {};
    for (const policy of o.policies) {
      const runs = tasks.filter((t) => t.podsPath === file && t.policy === policy).map((t) => results[t.id]!);
      const at = (x: number) => runs.map((r) => r.curve[x] ?? NaN);
      const curve: (number | null)[] = [];
      for (let x = 0; x < (runs[0]?.curve.length ?? 0); x++) {
        const vals = runs.map((r) => r.curve[x]).filter((v): v is number => v !== null && v !== undefined);
        curve.push(vals.length ? round(mean(vals)) : null);
      }
      const pub = PAPER_POLICY[policy] ? published.get(`${trace}|${PAPER_POLICY[policy]}`) : undefined;
      policiesOut[policy] = {
        alloc100: round(mean(at(100))),
        alloc130: round(mean(at(130))),
        perSeed100: at(100).map((v) => round(v)),
        perSeed130: at(130).map((v) => round(v)),
        sd130: round(sd(at(130))),
        failed: round(mean(runs.map((r) => r.failed)), 1),
        pods: round(mean(runs.map((r) => r.pods)), 1),
        secondsPerRun: round(mean(runs.map((r) => r.ms)) / 1000),
        curve,
        ...(pub ? { published: pub } : {}),
      };
    }
    return { trace, file, policies: policiesOut };
  });
  return { traces, seconds };
}

function runInChildren(tasks: PlacementTask[], workers: number, results: RunResult[], onProgress: (id: number, done: number, total: number) => void): Promise<void> {
  const child = fileURLToPath(new URL('./lib/placement-child.ts', import.meta.url));
  const tsx = import.meta.resolve('tsx');
  const queue = [...tasks];
  const children: ChildProcess[] = [];
  return new Promise<void>((resolvePromise, reject) => {
    let pending = tasks.length;
    let failed = false;
    const stopAll = () => {
      for (const c of children) if (c.connected) c.disconnect();
    };
    const next = (c: ChildProcess) => {
      const task = queue.shift();
      if (task) c.send(task);
      else if (c.connected) c.disconnect();
    };
    for (let i = 0; i < workers; i++) {
      const c = fork(child, [], { execArgv: ['--import', tsx], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } });
      children.push(c);
      c.on('message', (m: WorkerMessage) => {
        if (failed) return;
        if (m.type === 'progress') onProgress(m.id, m.done, m.total);
        else if (m.type === 'error') {
          failed = true;
          stopAll();
          reject(new Error(`run ${JSON.stringify(tasks[m.id])} failed:\n${m.message}`));
        } else {
          results[m.id] = m.result;
          onProgress(m.id, m.result.pods, m.result.pods);
          if (--pending === 0) {
            stopAll();
            resolvePromise();
          } else next(c);
        }
      });
      c.on('exit', (code) => {
        if (!failed && pending > 0 && code !== 0) {
          failed = true;
          stopAll();
          reject(new Error(`a bench placement child exited with code ${code}`));
        }
      });
      next(c);
    }
  });
}

/** The table printed on stdout. */
export function renderPlacementTable(traces: TraceReport[], seeds: number[]): string {
  const out: string[] = [];
  for (const t of traces) {
    out.push(`${t.trace}  (GPU allocation %, mean over ${seeds.length} seed${seeds.length === 1 ? '' : 's'} ${seeds.length > 1 ? `${seeds[0]}–${seeds[seeds.length - 1]}` : seeds[0]})`);
    const head = ['policy', 'alloc@100%', 'alloc@130%', 'sd@130%', 'paper@130%', 'Δ vs paper', 'failed pods', 's/run'];
    const rows = Object.entries(t.policies).map(([name, p]) => [
      name,
      p.alloc100.toFixed(2),
      p.alloc130.toFixed(2),
      p.sd130.toFixed(2),
      p.published ? p.published.alloc130.toFixed(2) : '-',
      p.published ? (p.alloc130 - p.published.alloc130 >= 0 ? '+' : '') + (p.alloc130 - p.published.alloc130).toFixed(2) : '-',
      p.failed.toFixed(0),
      p.secondsPerRun.toFixed(1),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    out.push(line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line));
    const fgd = t.policies.fgd;
    const ours = t.policies.k8s4ai;
    if (fgd && ours) {
      const wins = ours.perSeed130.filter((v, i) => v > fgd.perSeed130[i]!).length;
      out.push(`k8s4ai − fgd at 130%: ${(ours.alloc130 - fgd.alloc130 >= 0 ? '+' : '') + (ours.alloc130 - fgd.alloc130).toFixed(2)} points (ahead on ${wins}/${ours.perSeed130.length} seeds)`);
    }
    out.push('');
  }
  return out.join('\n');
}

export async function run(rest: string[]): Promise<void> {
  const v = parse(rest, {
    nodes: { type: 'string' },
    pods: { type: 'string' },
    'all-traces': { type: 'boolean' },
    policy: { type: 'string', default: POLICIES.join(',') },
    seeds: { type: 'string', default: '42-51' },
    ratio: { type: 'string', default: '1.3' },
    workers: { type: 'string' },
    json: { type: 'string' },
  });
  if (!v) return;
  const nodes = v.nodes ? resolve(v.nodes) : DEFAULT_NODES;
  if (!existsSync(nodes)) fail(`--nodes: ${nodes} does not exist${v.nodes ? '' : ' (the openb traces are expected in ../shared/data/openb beside this repository)'}`);
  let pods: string[];
  if (v['all-traces']) {
    if (v.pods) fail('--all-traces and --pods exclude each other');
    const dir = dirname(nodes);
    pods = readdirSync(dir)
      .filter((f) => /^openb_pod_list_.*\.csv$/.test(f))
      .sort((a, b) => (a === 'openb_pod_list_default.csv' ? -1 : b === 'openb_pod_list_default.csv' ? 1 : a.localeCompare(b)))
      .map((f) => join(dir, f));
    if (!pods.length) fail(`--all-traces: no openb_pod_list_*.csv in ${dir}`);
  } else {
    pods = v.pods ? v.pods.split(',').map((p) => resolve(p.trim())).filter(Boolean) : [DEFAULT_PODS];
  }
  for (const p of pods) if (!existsSync(p)) fail(`--pods: ${p} does not exist`);
  const known = profileNames();
  const policies = [...new Set(v.policy!.split(',').map((s) => s.trim()).filter(Boolean))];
  if (!policies.length) fail('--policy is empty');
  for (const p of policies) if (!known.includes(p)) fail(`--policy: unknown profile "${p}" (known: ${known.join(', ')})`);
  let seeds: number[];
  try {
    seeds = parseSeeds(v.seeds!);
  } catch (err) {
    return fail((err as Error).message);
  }
  const ratio = Number(v.ratio);
  if (!Number.isFinite(ratio) || ratio <= 0) fail(`--ratio must be a positive number, not "${v.ratio}"`);
  const workers = v.workers === undefined ? availableParallelism() : Number(v.workers);
  if (!Number.isInteger(workers) || workers < 0) fail(`--workers must be a whole number ≥ 0, not "${v.workers}"`);
  const jsonFile = v.json ? resolve(v.json) : DEFAULT_JSON;

  const header = { benchmark: 'placement', command: commandLine(), machine: machine(), startedAt: new Date().toISOString() };
  note(`${header.command}\n${header.machine.cores} cores (${header.machine.cpuModel}), node ${header.machine.node}: ${pods.length} trace(s) × ${policies.length} policies × ${seeds.length} seeds, ${Math.min(Math.max(workers, 1), pods.length * policies.length * seeds.length)} process(es)`);
  const { traces, seconds } = await runPlacementBench({ nodes, pods, policies, seeds, ratio, workers, progress: true });
  const first = traces[0]!;
  const doc = {
    ...header,
    finishedAt: new Date().toISOString(),
    loadAverageAtFinish: loadavg().map((l) => round(l)),
    procedure:
      'FGD (USENIX ATC23) artifact procedure: per seed shuffle the pods, resample to ratio × GPU capacity, place one at a time (arrivals only, failures permanent); GPU allocation % after each arrival, averaged per integer arrived %; mean over seeds',
    nodes: relative(REPO, nodes) || nodes,
    ratio,
    seeds,
    seconds: round(seconds, 1),
    trace: first.trace,
    policies: first.policies,
    ...(traces.length > 1 ? { traces: Object.fromEntries(traces.map((t) => [t.trace, { policies: t.policies }])) } : {}),
  };
  mkdirSync(dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);
  const shown = relative(process.cwd(), jsonFile);
  process.stdout.write(
    [
      `k8s4ai placement benchmark: ${relative(process.cwd(), nodes) || nodes}, pods resampled to ${ratio * 100}% of the GPU capacity`,
      '',
      renderPlacementTable(traces, seeds),
      `${traces.length * policies.length * seeds.length} runs in ${seconds.toFixed(1)} s`,
      `written: ${shown && !shown.startsWith('..') ? shown : jsonFile}`,
      '',
    ].join('\n'),
  );
}
