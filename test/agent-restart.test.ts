// The agent as its own process (`k8s4ai agent`), killed with SIGKILL and started again:
// the Tasks it ran are found again (same processes, never a second copy), a Task that
// finished while it was away is reported with its exit code, and deleting the gang then
// stops what still runs.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '../src/api/meta.ts';
import { GangSchedulingGroup, Node, Task } from '../src/api/kinds/index.ts';
import { startTestControlPlane, type TestControlPlane } from './helpers/controlplane.ts';
import { phaseOf } from './helpers/scheduling.ts';
import { waitFor } from './helpers/wait.ts';

const BIN = fileURLToPath(new URL('../bin/k8s4ai.js', import.meta.url));
const FLEET = fileURLToPath(new URL('../fleet/small.yaml', import.meta.url));

// Each member prints that it started, then waits for its own stop file and exits 0.
const MEMBER = `
const fs = require('node:fs');
const stop = process.argv[1] + '/stop-' + process.env.RANK;
console.log('started rank ' + process.env.RANK + ' pid ' + process.pid);
const timer = setInterval(() => { if (fs.existsSync(stop)) { clearInterval(timer); console.log('done'); } }, 50);
`;

let t: TestControlPlane;
let agent: ChildProcess | undefined;
let stateDir: string;
let stopDir: string;
const started: number[] = [];

function startAgent(): ChildProcess {
  const child = spawn(process.execPath, [
    BIN, 'agent', '--kubeconfig', t.kubeconfig, '--data-dir', t.dir, '--no-node', '--serve-simulated',
    '--state-dir', stateDir, '--heartbeat', '1', '--log-file', join(t.dir, 'agent.log'),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

before(async () => {
  t = await startTestControlPlane({ fleet: FLEET, scheduler: true, nodeGraceSeconds: 30 });
  stateDir = join(t.dir, 'agent-state');
  stopDir = join(t.dir, 'stops');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(stopDir);
});

after(async () => {
  if (agent && agent.exitCode === null) await kill9(agent);
  // Members are detached from the agent: a failed test must not leave them waiting forever.
  for (const rank of [0, 1]) writeFileSync(join(stopDir, `stop-${rank}`), '');
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await t.stop();
});

const task = (name: string) => t.cp.registry.get(Task, 'default', name);
const pidOf = (o: KubeObject) => (o.status as { pid?: number }).pid!;

test('an agent killed with SIGKILL finds its processes again and reports what ended meanwhile', { timeout: 120_000 }, async () => {
  agent = startAgent();
  await t.cp.registry.create(GangSchedulingGroup, 'default', {
    apiVersion: 'k8s4ai.io/v1alpha1',
    kind: 'GangSchedulingGroup',
    metadata: { name: 'waiter' },
    spec: { roles: [{ name: 'worker', replicas: 2, template: { command: ['node', '-e', MEMBER, stopDir], resources: { gpus: 1 }, terminationGracePeriodSeconds: 5 } }] },
  });
  const [w0, w1] = await waitFor('both members to run', async () => {
    const ts = await Promise.all([task('waiter-worker-0'), task('waiter-worker-1')]);
    return ts.every((x) => phaseOf(x) === 'Running') ? ts : undefined;
  }, 60_000);
  const pids = [pidOf(w0!), pidOf(w1!)];
  started.push(...pids);
  assert.ok(pids.every(alive), 'both processes run');
  const nodes = (await t.cp.registry.list(Node, undefined)).items;
  assert.ok(nodes.some((n) => (n.status as { heartbeatTime?: string }).heartbeatTime), 'the agent posts heartbeats for the simulated nodes');

  await kill9(agent);
  // While the agent is away, member 1 finishes; member 0 keeps running.
  writeFileSync(join(stopDir, 'stop-1'), '');
  await waitFor('member 1 to exit', () => !alive(pids[1]!), 30_000);
  assert.ok(alive(pids[0]!), 'member 0 survives its agent');

  agent = startAgent();
  const done1 = await waitFor('member 1 reported Succeeded', async () => {
    const x = await task('waiter-worker-1');
    return phaseOf(x) === 'Succeeded' ? x : undefined;
  }, 60_000);
  assert.equal((done1.status as { exitCode?: number }).exitCode, 0);
  const again0 = await task('waiter-worker-0');
  assert.equal(phaseOf(again0), 'Running');
  assert.equal(pidOf(again0), pids[0], 'member 0 is the same process');
  // One instance folder per member: nothing was started twice.
  for (const name of ['waiter-worker-0', 'waiter-worker-1']) {
    assert.equal(readdirSync(join(stateDir, 'tasks', 'default', name)).length, 1, `${name} ran once`);
  }
  const log = await (await t.fetch('/apis/k8s4ai.io/v1alpha1/namespaces/default/tasks/waiter-worker-0/log')).text();
  assert.equal(log.match(/^started /gm)?.length, 1, 'member 0 started once');

  // Deleting the gang stops what still runs, gracefully, through the new agent.
  await t.cp.registry.delete(GangSchedulingGroup, 'default', 'waiter');
  await waitFor('the Tasks to go', async () => (await t.cp.registry.list(Task, 'default')).items.length === 0, 60_000);
  assert.ok(!alive(pids[0]!), 'member 0 was stopped');
  assert.ok(!existsSync(join(stopDir, 'stop-0')), 'by the agent, not by finishing');
});
