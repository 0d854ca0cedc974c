// How often to checkpoint: the interval that wastes the least GPU time between the cost of
// writing checkpoints and the work lost to failures. Pure functions, no I/O, so the controller,
// the CLI and the benchmark all compute the same number.
//
//   δ  checkpoint cost: seconds the job is blocked writing one checkpoint
//   M  mean time between failures of the whole job (all its GPUs), seconds
//   R  restart cost: seconds to detect a failure, reschedule and reload the last checkpoint
//   τ  compute time between checkpoints, seconds
//
// Young (1974): τ = √(2δM), the minimum of the first-order waste δ/τ + τ/(2M).
// Daly (2006, "A higher order estimate of the optimum checkpoint interval for restart dumps",
// FGCS 22(3)): τ = √(2δM)·[1 + ⅓·√(δ/(2M)) + ⅑·(δ/(2M))] − δ while δ < 2M, else τ = M. It stays
// close to the exact optimum of the exponential-failure model when δ is not small against M,
// which is the case for large jobs (M of a few hours) writing large checkpoints.
import { formatDuration } from '../api/duration.ts';

export const CHECKPOINT_FORMULAS = ['young', 'daly', 'mtbf'] as const;
export type CheckpointFormula = (typeof CHECKPOINT_FORMULAS)[number];

export interface IntervalInput {
  /** δ: seconds one checkpoint blocks the job. */
  checkpointSeconds: number;
  /** M: mean time between failures of the job, seconds. */
  mtbfSeconds: number;
  /** Lower bound on the interval (e.g. to spare the storage); default none. */
  minSeconds?: number;
  /** Upper bound on the interval (e.g. a policy's longest allowed); default none. */
  maxSeconds?: number;
  /** The estimate to use; Daly unless asked otherwise (Young is kept for comparison). */
  formula?: 'young' | 'daly';
}

export interface IntervalChoice {
  /** τ: seconds of compute between the end of one checkpoint and the start of the next. */
  seconds: number;
  /** Which estimate gave `seconds` before clamping: 'mtbf' when δ ≥ 2M (Daly's fallback τ = M). */
  formula: CheckpointFormula;
  /** One human sentence: the formula, its inputs, the result and any clamping. */
  reason: string;
}

/** Throws a RangeError naming `name` unless `value` is a finite number > 0. */
function requirePositive(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive finite number of seconds, got ${String(value)}`);
  }
}

/** Young's first-order optimum √(2δM), seconds. */
export function youngInterval(deltaSec: number, mtbfSec: number): number {
  requirePositive('deltaSec', deltaSec);
  requirePositive('mtbfSec', mtbfSec);
  return Math.sqrt(2 * deltaSec * mtbfSec);
}

/** Daly's higher-order optimum, seconds; M itself once δ ≥ 2M (checkpointing barely pays then). */
export function dalyInterval(deltaSec: number, mtbfSec: number): number {
  requirePositive('deltaSec', deltaSec);
  requirePositive('mtbfSec', mtbfSec);
  if (deltaSec >= 2 * mtbfSec) return mtbfSec;
  const x = deltaSec / (2 * mtbfSec);
  return Math.sqrt(2 * deltaSec * mtbfSec) * (1 + Math.sqrt(x) / 3 + x / 9) - deltaSec;
}

/**
 * A duration for people: Go-style (src/api/duration.ts) from a minute up, one decimal below it
 * so small checkpoint costs ("2.1s") are not rounded away.
 */
export function formatSeconds(seconds: number): string {
  if (seconds >= 60 || seconds < 1) return formatDuration(seconds);
  return `${Number(seconds.toFixed(1))}s`;
}

function checkBounds(minSeconds: number | undefined, maxSeconds: number | undefined): void {
  if (minSeconds !== undefined && (!Number.isFinite(minSeconds) || minSeconds < 0)) {
    throw new RangeError(`minSeconds must be a finite number ≥ 0, got ${String(minSeconds)}`);
  }
  if (maxSeconds !== undefined) requirePositive('maxSeconds', maxSeconds);
  if (minSeconds !== undefined && maxSeconds !== undefined && minSeconds > maxSeconds) {
    throw new RangeError(`minSeconds (${minSeconds}) must not exceed maxSeconds (${maxSeconds})`);
  }
}

/** The interval to checkpoint at, by Daly (or Young when asked), clamped to [min, max], with why. */
export function optimalInterval(input: IntervalInput): IntervalChoice {
  const { checkpointSeconds: delta, mtbfSeconds: mtbf, minSeconds, maxSeconds, formula: asked = 'daly' } = input;
  requirePositive('checkpointSeconds', delta);
  requirePositive('mtbfSeconds', mtbf);
  checkBounds(minSeconds, maxSeconds);
  if (asked !== 'young' && asked !== 'daly') throw new RangeError(`formula must be "young" or "daly", got ${String(asked)}`);

  const formula: CheckpointFormula = asked === 'young' ? 'young' : delta >= 2 * mtbf ? 'mtbf' : 'daly';
  const raw = formula === 'young' ? youngInterval(delta, mtbf) : dalyInterval(delta, mtbf);
  const label = { young: 'Young', daly: 'Daly', mtbf: 'MTBF (δ ≥ 2M, Daly falls back to M)' }[formula];
  let reason = `${label}: δ=${formatSeconds(delta)}, M=${formatSeconds(mtbf)} → ${formatSeconds(raw)}`;

  let seconds = raw;
  if (minSeconds !== undefined && raw < minSeconds) {
    seconds = minSeconds;
    reason += `, raised to the minimum ${formatSeconds(minSeconds)}`;
  } else if (maxSeconds !== undefined && raw > maxSeconds) {
    seconds = maxSeconds;
    reason += `, capped at the maximum ${formatSeconds(maxSeconds)}`;
  }
  return { seconds, formula, reason };
}

/** Job MTBF in seconds from a per-GPU failure rate: the job fails when any of its GPUs does. */
export function mtbfFromRate(failuresPerGpuHour: number, gpus: number): number {
  if (!Number.isFinite(failuresPerGpuHour) || failuresPerGpuHour <= 0) {
    throw new RangeError(`failuresPerGpuHour must be a positive finite number, got ${String(failuresPerGpuHour)}`);
  }
  if (!Number.isInteger(gpus) || gpus <= 0) throw new RangeError(`gpus must be a positive integer, got ${String(gpus)}`);
  return 3600 / (failuresPerGpuHour * gpus);
}

export interface WasteInput {
  checkpointSeconds: number;
  intervalSeconds: number;
  mtbfSeconds: number;
  /** R: detect + reschedule + reload, seconds; default 0. */
  restartSeconds?: number;
}

/**
 * First-order share of wall time wasted: δ/τ writing checkpoints, τ/(2M) recomputing the half
 * interval lost on average per failure, R/M restarting. Good while τ, δ and R are small against
 * M; it is not clamped, so nonsense inputs can give more than 1.
 */
export function expectedWaste(input: WasteInput): number {
  const { checkpointSeconds: delta, intervalSeconds: tau, mtbfSeconds: mtbf, restartSeconds = 0 } = input;
  requirePositive('checkpointSeconds', delta);
  requirePositive('intervalSeconds', tau);
  requirePositive('mtbfSeconds', mtbf);
  if (!Number.isFinite(restartSeconds) || restartSeconds < 0) {
    throw new RangeError(`restartSeconds must be a finite number ≥ 0, got ${String(restartSeconds)}`);
  }
  return delta / tau + tau / (2 * mtbf) + restartSeconds / mtbf;
}
