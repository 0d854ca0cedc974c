// examples/training/train.ts as the agent runs it: a gang of 4 ranks on this machine with
// their all-reduce over TCP and a checkpoint folder each. A run that is checkpointed, loses
// a member and restarts from the checkpoint must end exactly where an uninterrupted run
// ends; the ranks left when a member dies must fail rather than wait on it.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV, readCheckpoint, writeRequest } from '../src/checkpoint/protocol.ts';
import { freePort } from '../src/lib/net.ts';
import { waitFor } from './helpers/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TRAIN = join(ROOT, 'examples/training/train.ts');
const WORLD = 4;
const STEPS = 40;

const scratch = mkdtempSync(join(tmpdir(), 'k8s4ai-train-'));
const running = new Set<ChildProcess>();
after(() => {
  // A failed test must not leave a gang behind waiting on its peers.
  for (const p of running) p.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});


interface Rank {
  rank: number;
  proc: ChildProcess;
  /** Whole lines of stdout so far. */
  lines(): string[];
  stderr(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startRank(rank: number, port: number, args: string[], env: Record<string, string> = {}): Rank {
  const proc = spawn(process.execPath, ['--import', 'tsx', TRAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(WORLD), LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal });
    }),
  );
  return { rank, proc, lines: () => out.split('\n').slice(0, -1), stderr: () => err, exit };
}

async function startGang(args: string[], envOf: (rank: number) => Record<string, string> = () => ({})): Promise<Rank[]> {
  const port = await freePort();
  return Array.from({ length: WORLD }, (_, r) => startRank(r, port, args, envOf(r)));
}

async function finish(gang: Rank[]): Promise<string> {
  const exits = await Promise.all(gang.map((r) => r.exit));
  for (const [i, e] of exits.entries()) assert.deepEqual(e, { code: 0, signal: null }, `rank ${i} failed:\n${gang[i].stderr()}`);
  const results = gang.map((r) => r.lines().find((l) => l.startsWith('result ')));
  assert.match(results[0] ?? '', /^result [0-9.e+-]+ [0-9a-f]{12}$/);
  for (const r of results) assert.equal(r, results[0], 'every rank ends with the same weights');
  return results[0]!;
}

const stepsOf = (r: Rank) => r.lines().flatMap((l) => (/^step (\d+) loss /.exec(l) ? [Number(/^step (\d+)/.exec(l)![1])] : []));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The example's own pace bounds these waits; the describe's timeout bounds the whole. */
const STEP_WAIT_MS = 240_000;

describe('examples/training/train.ts', { timeout: 300_000 }, () => {
  let uninterrupted: string | undefined;

  it('trains a gang of 4 to the same result on every rank', async () => {
    const gang = await startGang(['--steps', String(STEPS), '--step-ms', '0']);
    uninterrupted = await finish(gang);
    for (const r of gang) {
      assert.equal(r.lines()[0], `start rank ${r.rank}/${WORLD} restore none step 0`);
      assert.deepEqual(stepsOf(r), range(1, STEPS));
    }
    // The loss goes down: it is training, not just talking.
    const loss = (n: number) => Number(gang[0].lines().find((l) => l.startsWith(`step ${n} `))!.split(' ')[3]);
    assert.ok(loss(STEPS) < loss(1), `loss ${loss(1)} → ${loss(STEPS)}`);
  });

  it('checkpoints at one step on every rank, fails fast when a rank dies, and resumes to the same result', async () => {
    assert.ok(uninterrupted, 'needs the uninterrupted run');
    const dirs = range(0, WORLD - 1).map((r) => join(scratch, 'resume', `rank-${r}`));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    const ckptEnv = (r: number) => ({ [ENV.checkpointDir]: dirs[r] });

    // Slow steps, so that the run is still going when the checkpoint is complete.
    const gang = await startGang(['--steps', String(STEPS), '--step-ms', '100'], ckptEnv);
    await waitFor('rank 0 at step 5', () => stepsOf(gang[0]).includes(5), STEP_WAIT_MS);
    // The agent's request: the file, then the signal, to every member.
    for (const r of gang) {
      writeRequest(dirs[r.rank], { id: 'ckpt-a', reason: 'Preemption', time: new Date().toISOString() });
      r.proc.kill('SIGUSR1');
    }
    await waitFor('checkpoint ckpt-a from every rank', () => dirs.every((d) => readCheckpoint(d, 'ckpt-a') !== undefined), STEP_WAIT_MS);
    const steps = dirs.map((d) => readCheckpoint(d, 'ckpt-a')!.step);
    assert.ok(
      gang.every((r) => !r.lines().some((l) => l.startsWith('result '))),
      'the run finished before the kill: the test needs a slower --step-ms',
    );
    gang[2].proc.kill('SIGKILL');

    const exits = await Promise.all(gang.map((r) => r.exit));
    assert.equal(exits[2].signal, 'SIGKILL');
    for (const r of [0, 1, 3]) {
      assert.equal(exits[r].code, 1, `rank ${r} exits 1 when a peer dies: ${JSON.stringify(exits[r])}`);
      assert.match(gang[r].stderr(), /lost the connection/);
    }
    const step = steps[0];
    assert.deepEqual(steps, [step, step, step, step], 'every rank saved ckpt-a at the same step');
    assert.ok(step >= 5 && step < STEPS);
    for (const r of gang) if (r.rank !== 2) assert.ok(r.lines().includes(`checkpoint ckpt-a step ${step}`));

    const resumed = await startGang(['--steps', String(STEPS), '--step-ms', '0'], (r) => ({ ...ckptEnv(r), [ENV.restoreCheckpoint]: 'ckpt-a' }));
    assert.equal(await finish(resumed), uninterrupted);
    for (const r of resumed) {
      assert.equal(r.lines()[0], `start rank ${r.rank}/${WORLD} restore ckpt-a step ${step}`);
      assert.deepEqual(stepsOf(r), range(step + 1, STEPS));
    }
  });

  it('stops a rank on SIGTERM with 143, and the rest of the gang with 1', async () => {
    const gang = await startGang(['--steps', '100000', '--step-ms', '50']);
    await waitFor('every rank stepping', () => gang.every((r) => stepsOf(r).length > 0), STEP_WAIT_MS);
    gang[1].proc.kill('SIGTERM');
    const exits = await Promise.all(gang.map((r) => r.exit));
    assert.deepEqual(exits[1], { code: 143, signal: null });
    for (const r of [0, 2, 3]) assert.equal(exits[r].code, 1);
  });

  it('runs alone without WORLD_SIZE or checkpoint variables', async () => {
    const env: Record<string, string | undefined> = { ...process.env };
    for (const k of ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', ENV.checkpointDir, ENV.restoreCheckpoint]) delete env[k];
    const proc = spawn(process.execPath, ['--import', 'tsx', TRAIN, '--steps', '5', '--step-ms', '0'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    running.add(proc);
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise((resolve) => proc.on('close', resolve));
    running.delete(proc);
    assert.equal(code, 0);
    const lines = out.trim().split('\n');
    assert.equal(lines[0], 'start rank 0/1 restore none step 0');
    assert.equal(lines.filter((l) => l.startsWith('step ')).length, 5);
    assert.match(lines.at(-1)!, /^result /);
  });
});
