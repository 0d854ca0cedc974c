// `npx k8s4ai bench checkpoint`: goodput of a large training job under failures, with the
// checkpoint interval the controller would choose (src/checkpoint/interval.ts, Daly's estimate)
// against fixed intervals and the best fixed interval found by a fine sweep.
//
// The job: Llama 3 405B's pre-training as Meta reported it ("The Llama 3 Herd of Models", 2024):
// 16,384 GPUs for 54 days, 466 job interruptions of which 419 unexpected. The 419 are taken as
// exponential failures of the whole job: λ = 419 / (16,384 × 1,296 GPU-hours) ≈ 1.97e-5 per
// GPU-hour, a job MTBF M = 1,296 h / 419 ≈ 3.09 h. The planned interruptions are left out: a
// planned stop checkpoints first and loses nothing.
//
// The model (a discrete-event Monte Carlo over the 54-day wall clock): the job computes for τ,
// then blocks δ writing a checkpoint, and repeats. A failure at any moment, during compute, a
// checkpoint or a restart, loses everything since the last completed checkpoint and costs R
// (detect + reschedule + reload) before compute resumes. Goodput = useful compute / wall time
// (for one job the same as useful GPU-time / GPU-time). Every policy and every δ sees the same
// failure times for a given seed (common random numbers), so their differences are not noise
// between draws. Work in progress when the 54 days end counts as done: the window closes, the
// job does not fail, and counting it lost would penalize long intervals for the window alone.
//
// Policies: `auto` = optimalInterval(δ, M) with M the MTBF Meta observed, as the controller
// would compute it; fixed 5, 15, 30 and 60 minutes; a log-spaced sweep of fixed intervals from
// 1 min to 4 h, whose best is the target auto should come within 1% of. The `model` column is
// the closed form of the same model (Daly 2006, eq. for exponential failures with restarts:
// goodput = τ / (M·e^{R/M}·(e^{(τ+δ)/M} − 1))), a check on the simulator.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSeconds, mtbfFromRate, optimalInterval } from '../src/checkpoint/interval.ts';
import { seededRandom } from '../src/lib/random.ts';
import { commandLine, machine } from './api-main.ts';
import { argHelpers } from './lib/args.ts';
import { note } from './lib/progress.ts';
import { round } from './lib/stats.ts';

const USAGE = `usage: npx k8s4ai bench checkpoint [options]

  --seeds N             failure sequences to average over (default 100)
  --seed S              first seed; sequence i uses S + i (default 42)
  --restart-seconds R   detect + restart + reload after a failure (default 600)
  --json FILE           report (default bench/results/checkpoint.json)
  -h, --help            this text
`;

const { fail, positiveNumber: num, parse } = argHelpers(USAGE);

/** Llama 3 405B pre-training as reported by Meta (2024). */
const LLAMA3 = { gpus: 16_384, days: 54, interruptions: 466, unexpectedInterruptions: 419 } as const;
const CHECKPOINT_SECONDS = [5, 60, 300] as const;
const FIXED_SECONDS = [300, 900, 1800, 3600] as const;
const SWEEP = { fromSeconds: 60, toSeconds: 4 * 3600, points: 400 } as const;
/** Auto passes when its goodput is at most this far (relative) below the best sweep's. */
const TOLERANCE = 0.01;

/** Failure times in [0, horizon) of a Poisson process of mean gap `mtbf`, from one seed. */
function failureTimes(seed: number, mtbf: number, horizon: number): Float64Array {
  const random = seededRandom(seed);
  const times: number[] = [];
  // 1 − u lies in (0, 1], so the logarithm is finite.
  for (let t = -mtbf * Math.log(1 - random()); t < horizon; t += -mtbf * Math.log(1 - random())) times.push(t);
  return Float64Array.from(times);
}

/**
 * Useful compute / wall time for one failure sequence. Between resuming and the next failure
 * only whole τ + δ cycles survive; a failure during a restart just starts the restart over.
 */
function simulatedGoodput(failures: Float64Array, horizon: number, tau: number, delta: number, restart: number): number {
  const cycle = tau + delta;
  let useful = 0;
  let resumeAt = 0;
  for (const failure of failures) {
    if (failure > resumeAt) useful += Math.floor((failure - resumeAt) / cycle) * tau;
    resumeAt = failure + restart;
  }
  if (horizon > resumeAt) {
    const left = horizon - resumeAt;
    const cycles = Math.floor(left / cycle);
    useful += cycles * tau + Math.min(left - cycles * cycle, tau);
  }
  return useful / horizon;
}

/** Mean goodput over the failure sequences, and its standard error. */
function meanGoodput(sequences: readonly Float64Array[], horizon: number, tau: number, delta: number, restart: number): { mean: number; stderr: number } {
  const values = sequences.map((f) => simulatedGoodput(f, horizon, tau, delta, restart));
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, stderr: Math.sqrt(variance / values.length) };
}

/** Expected goodput of the same model in closed form (Daly 2006), for steady state. */
function modelGoodput(tau: number, delta: number, mtbf: number, restart: number): number {
  return tau / (mtbf * Math.exp(restart / mtbf) * Math.expm1((tau + delta) / mtbf));
}

function logGrid(from: number, to: number, points: number): number[] {
  return Array.from({ length: points }, (_, i) => from * (to / from) ** (i / (points - 1)));
}

interface Row {
  policy: string;
  intervalSeconds: number;
  goodput: number;
  stderr: number;
  model: number;
}

interface CaseResult {
  checkpointSeconds: number;
  reason: string;
  rows: Row[];
  auto: Row;
  best: Row;
  /** (best − auto) / best. */
  autoShortfall: number;
  withinTolerance: boolean;
}

function runCase(delta: number, sequences: readonly Float64Array[], horizon: number, mtbf: number, restart: number, sweep: readonly number[]): CaseResult {
  const row = (policy: string, tau: number): Row => {
    const { mean, stderr } = meanGoodput(sequences, horizon, tau, delta, restart);
    return { policy, intervalSeconds: tau, goodput: mean, stderr, model: modelGoodput(tau, delta, mtbf, restart) };
  };
  const choice = optimalInterval({ checkpointSeconds: delta, mtbfSeconds: mtbf });
  const auto = row(`auto (${choice.formula})`, choice.seconds);
  let best = row('best sweep', sweep[0]!);
  for (const tau of sweep.slice(1)) {
    const r = row('best sweep', tau);
    if (r.goodput > best.goodput) best = r;
  }
  const fixed = FIXED_SECONDS.map((tau) => row(`fixed ${formatSeconds(tau)}`, tau));
  const autoShortfall = (best.goodput - auto.goodput) / best.goodput;
  return { checkpointSeconds: delta, reason: choice.reason, rows: [auto, best, ...fixed], auto, best, autoShortfall, withinTolerance: autoShortfall <= TOLERANCE };
}

/** A share as a percentage; rounding never shows "-0.00%". */
const pct = (x: number, digits = 2) => `${(100 * x).toFixed(digits).replace(/^-(0\.?0*)$/, '$1')}%`;

function caseTable(c: CaseResult): string[] {
  const head = ['policy', 'interval', 'goodput', '± s.e.', 'model', 'vs best sweep'];
  const rows = [head, ...c.rows.map((r) => [r.policy, formatSeconds(r.intervalSeconds), pct(r.goodput), pct(r.stderr, 3), pct(r.model), pct((r.goodput - c.best.goodput) / c.best.goodput)])];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const verdict = c.withinTolerance ? 'yes' : 'NO';
  return [
    `δ = ${formatSeconds(c.checkpointSeconds)}: ${c.reason}`,
    ...rows.map((r) => `  ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')}`),
    // Auto is off the sweep's grid, so it can beat the best swept interval.
    `  auto within ${pct(TOLERANCE, 0)} of the best sweep: ${verdict} (${c.autoShortfall > 0 ? `${pct(c.autoShortfall, 3)} below` : `${pct(-c.autoShortfall, 3)} above`})`,
  ];
}

function restartSeconds(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0) fail(`--restart-seconds must be a number ≥ 0, not "${raw}"`);
  return n;
}

export async function run(rest: string[]): Promise<void> {
  const v = parse(rest, {
    seeds: { type: 'string', default: '100' },
    seed: { type: 'string', default: '42' },
    'restart-seconds': { type: 'string', default: '600' },
    json: { type: 'string' },
  });
  if (!v) return;
  const seeds = num('seeds', v.seeds!);
  const seed = num('seed', v.seed!);
  const restart = restartSeconds(v['restart-seconds']!);
  const jsonFile = v.json ? resolve(v.json) : fileURLToPath(new URL('results/checkpoint.json', import.meta.url));
  const header = { benchmark: 'checkpoint', command: commandLine(), machine: machine(), startedAt: new Date().toISOString() };
  note(header.command);

  const hours = LLAMA3.days * 24;
  const horizon = hours * 3600;
  const failuresPerGpuHour = LLAMA3.unexpectedInterruptions / (LLAMA3.gpus * hours);
  const mtbf = mtbfFromRate(failuresPerGpuHour, LLAMA3.gpus);
  const sweep = logGrid(SWEEP.fromSeconds, SWEEP.toSeconds, SWEEP.points);

  const started = performance.now();
  const sequences = Array.from({ length: seeds }, (_, i) => failureTimes(seed + i, mtbf, horizon));
  const results = CHECKPOINT_SECONDS.map((delta) => runCase(delta, sequences, horizon, mtbf, restart, sweep));
  const wallMs = performance.now() - started;
  const failuresMean = sequences.reduce((s, f) => s + f.length, 0) / seeds;

  const doc = {
    ...header,
    finishedAt: new Date().toISOString(),
    parameters: {
      job: LLAMA3,
      failuresPerGpuHour,
      mtbfSeconds: round(mtbf, 1),
      horizonSeconds: horizon,
      restartSeconds: restart,
      seeds,
      firstSeed: seed,
      failuresPerSeedMean: round(failuresMean, 1),
      sweep: SWEEP,
      tolerance: TOLERANCE,
      wallMs: round(wallMs, 0),
    },
    cases: results.map((c) => ({
      checkpointSeconds: c.checkpointSeconds,
      autoIntervalSeconds: round(c.auto.intervalSeconds, 1),
      autoGoodput: round(c.auto.goodput, 6),
      bestSweepIntervalSeconds: round(c.best.intervalSeconds, 1),
      bestSweepGoodput: round(c.best.goodput, 6),
      fixed: Object.fromEntries(FIXED_SECONDS.map((tau, i) => [String(tau), round(c.rows[2 + i]!.goodput, 6)])),
    })),
    // Per case, beyond the fixed shape of `cases`: the controller's reason, the closed-form model
    // and the verdict.
    details: results.map((c) => ({
      checkpointSeconds: c.checkpointSeconds,
      reason: c.reason,
      autoShortfall: round(c.autoShortfall, 6),
      autoWithinTolerance: c.withinTolerance,
      rows: c.rows.map((r) => ({ policy: r.policy, intervalSeconds: round(r.intervalSeconds, 1), goodput: round(r.goodput, 6), stderr: round(r.stderr, 6), modelGoodput: round(r.model, 6) })),
    })),
  };
  mkdirSync(dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);

  const shown = relative(process.cwd(), jsonFile);
  const passed = results.filter((c) => c.withinTolerance).length;
  const out = [
    `k8s4ai checkpoint benchmark: ${LLAMA3.gpus.toLocaleString('en-US')} GPUs for ${LLAMA3.days} days, ${LLAMA3.unexpectedInterruptions} unexpected interruptions (Llama 3)`,
    `λ = ${failuresPerGpuHour.toExponential(3)} per GPU-hour, job MTBF M = ${formatSeconds(mtbf)}, restart R = ${formatSeconds(restart)}, ${seeds} seeds from ${seed} (${failuresMean.toFixed(1)} failures each on average)`,
    `sweep: ${SWEEP.points} intervals from ${formatSeconds(SWEEP.fromSeconds)} to ${formatSeconds(SWEEP.toSeconds)}, log-spaced; ${Math.round(wallMs)} ms`,
    `command: ${header.command}`,
    '',
    ...results.flatMap((c) => [...caseTable(c), '']),
    `auto within ${pct(TOLERANCE, 0)} of the best sweep in ${passed} of ${results.length} cases`,
    'goodput: useful compute / wall time, mean over seeds (± its standard error); model: closed form of the same model;',
    'vs best sweep: relative to the best swept interval, all policies on the same failure times.',
    `written: ${shown && !shown.startsWith('..') ? shown : jsonFile}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
