// The example training job (examples/training/gang-checkpoint.yaml, train.ts) for tests: its
// manifests with test-sized settings, an uninterrupted reference run of the same job with
// plain processes, and readers for what its logs say.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '../../src/api/meta.ts';
import { readManifests } from '../../src/cli/manifests.ts';
import { freePort } from '../../src/lib/net.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TRAIN_EXAMPLE = `${ROOT}examples/training/gang-checkpoint.yaml`;
const TRAIN_SCRIPT = `${ROOT}examples/training/train.ts`;

export interface TrainSettings {
  steps: number;
  stepMs: number;
  /** The policy's interval (a duration or auto). */
  interval: string;
  storagePath: string;
  /** Gang name; default train-demo. */
  name?: string;
  preemptionGracePeriod?: string;
  withPolicy?: boolean;
}

/** The example's CheckpointPolicy and gang, resized for a test. */
export function trainManifests(s: TrainSettings): { policy?: KubeObject; gang: KubeObject } {
  let policy: KubeObject | undefined;
  let gang: KubeObject | undefined;
  for (const m of readManifests([TRAIN_EXAMPLE])) {
    const o = structuredClone(m.object) as KubeObject & { spec: Record<string, any> };
    if (o.kind === 'CheckpointPolicy') {
      o.metadata.name = s.name ?? o.metadata.name;
      o.spec.interval = s.interval;
      o.spec.storage.path = s.storagePath;
      o.spec.restore.backoff = { initial: '500ms', max: '2s' };
      if (s.preemptionGracePeriod) o.spec.preemptionGracePeriod = s.preemptionGracePeriod;
      policy = o;
    } else {
      o.metadata.name = s.name ?? o.metadata.name;
      o.spec.roles[0].template.args = ['--steps', String(s.steps), '--step-ms', String(s.stepMs)];
      // The example's relative script path is the repository's: the test's agent may run elsewhere.
      o.spec.roles[0].template.workingDir = ROOT;
      if (s.withPolicy === false) delete o.spec.checkpointPolicyName;
      else o.spec.checkpointPolicyName = s.name ?? o.spec.checkpointPolicyName;
      gang = o;
    }
  }
  return { policy: s.withPolicy === false ? undefined : policy, gang: gang! };
}


/** The `result …` line of an uninterrupted run: `ranks` plain processes, no checkpoints. */
export async function referenceResult(steps: number, ranks = 4): Promise<string> {
  const port = await freePort();
  const outputs = await Promise.all(Array.from({ length: ranks }, (_, rank) => new Promise<string>((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, RANK: String(rank), WORLD_SIZE: String(ranks), LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) };
    for (const k of Object.keys(env)) if (k.startsWith('K8S4AI_')) delete env[k];
    const child = spawn(process.execPath, ['--import', 'tsx', TRAIN_SCRIPT, '--steps', String(steps), '--step-ms', '0'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`reference rank ${rank} exited ${code}:\n${out}`))));
  })));
  const results = new Set(outputs.map(resultOf));
  if (results.size !== 1) throw new Error(`reference ranks disagree: ${[...results].join(' / ')}`);
  return [...results][0]!;
}

export const resultOf = (log: string): string => /^result .*$/m.exec(log)?.[0] ?? '';

/** What a log says: where it started (restore id and steps done) and the steps it ran, in order. */
export function readTrainLog(log: string): { restore: string; startStep: number; steps: number[]; result: string } {
  const start = /^start rank \d+\/\d+ restore (\S+) step (\d+)$/m.exec(log);
  if (!start) throw new Error(`no start line in the log:\n${log.slice(0, 500)}`);
  const steps = [...log.matchAll(/^step (\d+) loss /gm)].map((m) => Number(m[1]));
  return { restore: start[1]!, startStep: Number(start[2]), steps, result: resultOf(log) };
}

/** Steps from..to inclusive. */
export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
