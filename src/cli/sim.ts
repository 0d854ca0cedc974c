// `k8s4ai sim`: replay a workload against a fleet through the real scheduler, on a virtual
// clock, far faster than real time. A summary table on stdout (one column per policy), a
// progress bar on stderr, and with --json every gang's wait and span and the allocation and
// fragmentation over time.
//
//   k8s4ai sim                                            # demo fleet, examples/sim/workload.yaml
//   k8s4ai sim --fleet fleet/small.yaml --workload my-gangs.yaml --policy k8s4ai,spread
//   k8s4ai sim --nodes openb_node_list_gpu_node.csv --pods openb_pod_list_default.csv --json out.json
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { parseDuration } from '../api/duration.ts';
import { FLEET_DEMO_PATH, FLEET_SMALL_PATH, FleetError } from '../fleet/index.ts';
import { DEFAULT_PROFILE, profileNames } from '../scheduler/framework/profiles.ts';
import { clusterFromFleet, type SimCluster } from '../sim/cluster.ts';
import { simulate, type SimResult } from '../sim/engine.ts';
import { simReport, summaryRows } from '../sim/report.ts';
import { clusterFromOpenb, openbJobs } from '../sim/trace.ts';
import { loadWorkload, sortJobs, type SimJob } from '../sim/workload.ts';
import { CliError } from './errors.ts';

/** The workload `k8s4ai sim` replays on a fleet when none is named. */
export const SIM_EXAMPLE_WORKLOAD: string = fileURLToPath(new URL('../../examples/sim/workload.yaml', import.meta.url));

export interface SimCommandOptions {
  fleet?: string;
  nodes?: string;
  pods?: string;
  workload?: string[];
  policy?: string;
  json?: string;
  maxWait?: string;
  failUnplaced?: boolean;
  samples?: string;
  limit?: string;
  progress?: boolean;
}

const show = (p: string) => {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
};

function positiveInt(flag: string, raw: string | undefined, fallback: number, allowZero = false): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new CliError(`--${flag} must be a ${allowZero ? 'non-negative' : 'positive'} integer, not "${raw}"`);
  return n;
}

function loadInputs(o: SimCommandOptions): { cluster: SimCluster; jobs: SimJob[]; sources: Record<string, string> } {
  if (o.nodes && o.fleet) throw new CliError('give either --fleet or --nodes, not both');
  if (o.pods && !o.nodes && !o.fleet) throw new CliError('--pods replays an openb pod list: give its node list with --nodes');
  const sources: Record<string, string> = {};
  let cluster: SimCluster;
  try {
    if (o.nodes) {
      cluster = clusterFromOpenb(o.nodes);
      sources.nodes = show(o.nodes);
    } else {
      const fleet = !o.fleet || o.fleet === 'demo' ? FLEET_DEMO_PATH : o.fleet === 'small' ? FLEET_SMALL_PATH : o.fleet;
      cluster = clusterFromFleet(fleet);
      sources.fleet = show(fleet);
    }
  } catch (err) {
    if (err instanceof FleetError) throw new CliError(err.message.replace(/\n\s*/g, '; '));
    throw err;
  }
  const jobs: SimJob[] = [];
  if (o.pods) {
    jobs.push(...openbJobs(o.pods));
    sources.pods = show(o.pods);
  }
  const workloads = o.workload ?? (o.pods ? [] : o.nodes ? [] : [SIM_EXAMPLE_WORKLOAD]);
  if (!o.pods && o.nodes && workloads.length === 0) throw new CliError('nothing to replay: give --pods (an openb pod list) or --workload (manifests)');
  for (const file of workloads) {
    const w = loadWorkload(file);
    if (w.skipped.length) process.stderr.write(`${show(file)}: skipped ${w.skipped.length} document(s) that are not workloads: ${w.skipped.slice(0, 5).join(', ')}${w.skipped.length > 5 ? ', …' : ''}\n`);
    jobs.push(...w.jobs);
  }
  if (workloads.length) sources.workload = workloads.map(show).join(',');
  const ids = new Set<string>();
  for (const j of jobs) {
    if (ids.has(j.gang.id)) throw new CliError(`gang ${j.gang.id} appears in more than one workload`);
    ids.add(j.gang.id);
  }
  const sorted = sortJobs(jobs);
  const limit = positiveInt('limit', o.limit, sorted.length);
  return { cluster, jobs: sorted.slice(0, limit), sources };
}

/** One column per policy. */
export function comparisonTable(results: SimResult[]): string {
  const rows = results.map(summaryRows);
  const labels = rows[0]!.map(([k]) => k);
  const header = ['', ...results.map((r) => r.policy)];
  const table = [header, ...labels.map((label, i) => [label, ...rows.map((r) => r[i]![1])])];
  const widths = header.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  return table.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd()).join('\n');
}

export async function sim(o: SimCommandOptions): Promise<void> {
  const policies = (o.policy ?? DEFAULT_PROFILE.name).split(',').map((p) => p.trim()).filter(Boolean);
  const known = new Set(profileNames());
  for (const p of policies) if (!known.has(p)) throw new CliError(`unknown policy "${p}" (known: ${[...known].join(', ')})`);
  const maxWait = o.maxWait !== undefined ? parseDuration(o.maxWait) : undefined;
  const samples = positiveInt('samples', o.samples, 200, true);
  const { cluster, jobs, sources } = loadInputs(o);
  const gpus = cluster.nodes.reduce((s, n) => s + n.devices.length, 0);
  process.stderr.write(`sim: ${cluster.name}: ${cluster.nodes.length} nodes, ${gpus} GPUs; ${jobs.length} gangs; ${policies.join(', ')}\n`);

  const results: SimResult[] = [];
  for (const policy of policies) {
    const bar = o.progress === false ? undefined : new cliProgress.SingleBar(
      { stream: process.stderr, format: `  ${policy.padEnd(14)} [{bar}] {percentage}% | {value}/{total} gangs | t={clock}`, barsize: 30, hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    bar?.start(jobs.length, 0, { clock: '0s' });
    try {
      results.push(
        simulate({
          cluster,
          jobs,
          profile: policy,
          samples,
          ...(maxWait !== undefined ? { maxWait } : {}),
          ...(o.failUnplaced ? { failUnplaced: true } : {}),
          onProgress: (done, _total, now) => bar?.update(done, { clock: `${Math.round(now)}s` }),
        }),
      );
    } finally {
      bar?.stop();
    }
  }

  const lines = [`k8s4ai sim: ${cluster.name} (${cluster.nodes.length} nodes, ${gpus} GPUs), ${jobs.length} gangs${sources.workload ? ` from ${sources.workload}` : ''}${sources.pods ? ` from ${sources.pods}` : ''}`, '', comparisonTable(results)];
  if (o.json) {
    const file = resolve(o.json);
    mkdirSync(dirname(file), { recursive: true });
    const doc = {
      kind: 'SimReport',
      command: ['k8s4ai', ...process.argv.slice(2)].join(' '),
      startedAt: new Date().toISOString(),
      inputs: { ...sources, gangs: jobs.length, nodes: cluster.nodes.length, gpus },
      options: { ...(maxWait !== undefined ? { maxWaitS: maxWait } : {}), failUnplaced: Boolean(o.failUnplaced), samples },
      policies: Object.fromEntries(results.map((r) => [r.policy, simReport(r)])),
    };
    writeFileSync(file, `${JSON.stringify(doc)}\n`);
    lines.push('', `written: ${show(file)}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
