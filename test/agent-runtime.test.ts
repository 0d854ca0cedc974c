// The agent's process runtime with real processes: shims, logs, signals, graceful stop,
// CannotRun, resource-limit fallbacks, and recovery by a new runtime on the same state dir
// (what an agent restart looks like).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessRuntime, type ExitInfo, type ProcessSpec } from '../src/agent/runtime/index.ts';
import { isAlive, readStat } from '../src/agent/runtime/procfs.ts';
import { waitFor } from './helpers/wait.ts';

const NODE = process.execPath;
const WAIT_MS = 20_000;
let root: string;
const runtimes: ProcessRuntime[] = [];
const started: Array<{ pid?: number; shimPid: number }> = [];
let seq = 0;

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s4ai-runtime-'));
});
after(() => {
  for (const rt of runtimes) rt.close();
  // Whatever a failed test left behind must not outlive the suite.
  for (const p of started) {
    for (const pid of [p.pid, p.shimPid]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
});

function runtime(stateDir = path.join(root, `state-${++seq}`), extra: Partial<ConstructorParameters<typeof ProcessRuntime>[0]> = {}): ProcessRuntime {
  const rt = new ProcessRuntime({ stateDir, pollMs: 100, ...extra });
  runtimes.push(rt);
  return rt;
}

function spec(script: string, over: Partial<ProcessSpec> = {}): ProcessSpec {
  return { namespace: 'default', name: `job-${++seq}`, uid: `uid-${seq}`, attempt: 0, argv: [NODE, '-e', script], env: {}, ...over };
}

/** Collects exit events by uid. */
function exits(rt: ProcessRuntime): (uid: string) => Promise<ExitInfo> {
  const seen = new Map<string, ExitInfo>();
  const waiting = new Map<string, (e: ExitInfo) => void>();
  rt.onExit((e) => {
    seen.set(e.uid, e);
    waiting.get(e.uid)?.(e);
  });
  return (uid) =>
    seen.has(uid)
      ? Promise.resolve(seen.get(uid)!)
      : new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no exit event for ${uid}`)), WAIT_MS);
          waiting.set(uid, (e) => {
            clearTimeout(t);
            resolve(e);
          });
        });
}

const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
const logHas = (file: string, text: string) => waitFor(`"${text}" in ${file}`, () => read(file).includes(text), WAIT_MS);
const gone = (pid: number) => {
  const s = readStat(pid);
  return !s || s.state === 'Z';
};

// A workload that says it is ready (its handlers are installed) and then idles.
const READY = 'console.log("ready"); setInterval(() => {}, 1000);';

test('env and cwd reach the process, nothing else of the agent env does, and start() records state.json', async () => {
  const rt = runtime();
  const wait = exits(rt);
  const cwd = fs.mkdtempSync(path.join(root, 'cwd-'));
  const rec = await rt.start(
    spec('console.log(JSON.stringify({ cwd: process.cwd(), foo: process.env.FOO, path: process.env.PATH ?? null, keys: Object.keys(process.env) }))', {
      cwd,
      env: { FOO: 'bar baz' },
    }),
  );
  started.push(rec);
  // A process this short may already have finished by the time start() resolves.
  assert.ok(rec.state === 'running' || rec.state === 'exited', rec.state);
  assert.ok(rec.pid && rec.shimPid && rec.pid !== rec.shimPid);
  const state = JSON.parse(fs.readFileSync(path.join(path.dirname(rec.logPath), 'state.json'), 'utf8'));
  assert.equal(state.pid, rec.pid);
  assert.equal(state.shimPid, rec.shimPid);
  assert.equal(typeof state.pidStartTime, 'number');
  assert.equal(typeof state.shimStartTime, 'number');

  const exit = await wait(rec.uid);
  assert.equal(exit.reason, 'Completed');
  assert.equal(exit.exitCode, 0);
  const out = JSON.parse(read(rec.logPath).trim());
  assert.equal(out.cwd, fs.realpathSync(cwd));
  assert.equal(out.foo, 'bar baz');
  assert.equal(out.path, null);
  assert.deepEqual(out.keys, ['FOO']);
  assert.equal(rt.get(rec.uid)?.state, 'exited');
});

test('argv is passed literally: spaces, quotes, $HOME, globs and backticks are not interpreted', async () => {
  const rt = runtime();
  const wait = exits(rt);
  const args = ['a b', '"double"', "it's", '$HOME', '${PATH}', '*', '`id`', '; echo pwned', ''];
  const rec = await rt.start(spec('console.log(JSON.stringify(process.argv.slice(1)))', { argv: [NODE, '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', ...args], env: { HOME: '/nowhere' } }));
  started.push(rec);
  await wait(rec.uid);
  assert.deepEqual(JSON.parse(read(rec.logPath).trim()), args);
});

test('stdout and stderr both land in output.log; exit codes are reported', async () => {
  const rt = runtime();
  const wait = exits(rt);
  const rec = await rt.start(spec('console.log("to stdout"); console.error("to stderr"); process.exitCode = 3'));
  started.push(rec);
  const exit = await wait(rec.uid);
  assert.equal(exit.exitCode, 3);
  assert.equal(exit.reason, 'Error');
  assert.equal(exit.signal, undefined);
  const log = read(rec.logPath);
  assert.match(log, /to stdout/);
  assert.match(log, /to stderr/);
  assert.ok(fs.existsSync(path.join(path.dirname(rec.logPath), 'exit.json')));
});

test('a SIGKILL from outside on the workload is reported as signal SIGKILL', async () => {
  const rt = runtime();
  const wait = exits(rt);
  const rec = await rt.start(spec(READY));
  started.push(rec);
  assert.equal(rec.state, 'running');
  await logHas(rec.logPath, 'ready');
  process.kill(rec.pid!, 'SIGKILL');
  const exit = await wait(rec.uid);
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.exitCode, undefined);
  assert.equal(exit.reason, 'Signaled');
  await waitFor('shim exit', () => gone(rec.shimPid), WAIT_MS);
});

test('graceful stop: a process that handles SIGTERM exits 0', async () => {
  const rt = runtime();
  const rec = await rt.start(spec(`process.on('SIGTERM', () => { console.log('terminating'); process.exit(0); }); ${READY}`));
  started.push(rec);
  await logHas(rec.logPath, 'ready');
  const exit = await rt.stop(rec.uid, 30);
  assert.equal(exit.exitCode, 0);
  assert.equal(exit.reason, 'Completed');
  assert.match(read(rec.logPath), /terminating/);
  assert.equal(rt.get(rec.uid)?.exit?.exitCode, 0);
});

test('graceful stop: a process ignoring SIGTERM is SIGKILLed with its whole group after the grace period', async () => {
  const rt = runtime();
  const wait = exits(rt);
  // It also forks a grandchild, which must go too.
  const script = `require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); process.on('SIGTERM', () => console.log('ignoring SIGTERM')); ${READY}`;
  const rec = await rt.start(spec(script));
  started.push(rec);
  await logHas(rec.logPath, 'ready');
  const group = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && readStat(Number(p))?.pgrp === rec.shimPid && !gone(Number(p)));
  await waitFor('grandchild', () => group().length >= 3, WAIT_MS);
  const t0 = Date.now();
  const exit = await rt.stop(rec.uid, 1);
  assert.ok(Date.now() - t0 >= 900, 'waited for the grace period');
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.reason, 'Signaled');
  assert.match(read(rec.logPath), /ignoring SIGTERM/);
  await waitFor('group gone', () => group().length === 0, WAIT_MS);
  assert.equal((await wait(rec.uid)).signal, 'SIGKILL');
});

test('SIGUSR1 and SIGUSR2 reach the workload, via signal() and via a signal to the shim', async () => {
  const rt = runtime();
  const wait = exits(rt);
  const rec = await rt.start(
    spec(`let n = 0; const got = (s) => { console.log('got ' + s); if (++n === 2) process.exit(7); }; process.on('SIGUSR1', () => got('SIGUSR1')); process.on('SIGUSR2', () => got('SIGUSR2')); ${READY}`),
  );
  started.push(rec);
  await logHas(rec.logPath, 'ready');
  assert.equal(await rt.signal(rec.uid, 'SIGUSR1'), true);
  await logHas(rec.logPath, 'got SIGUSR1');
  process.kill(rec.shimPid, 'SIGUSR2'); // the shim forwards what it receives
  const exit = await wait(rec.uid);
  assert.match(read(rec.logPath), /got SIGUSR2/);
  assert.equal(exit.exitCode, 7);
  assert.equal(await rt.signal(rec.uid, 'SIGUSR1'), false, 'nothing to signal once exited');
  assert.equal(await rt.signal('no-such-uid', 'SIGUSR1'), false);
});

test('kill() takes shim and workload at once', async () => {
  const rt = runtime();
  const rec = await rt.start(spec(`process.on('SIGTERM', () => {}); ${READY}`));
  started.push(rec);
  await logHas(rec.logPath, 'ready');
  const exit = await rt.kill(rec.uid);
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.reason, 'Signaled');
  await waitFor('both gone', () => gone(rec.pid!) && gone(rec.shimPid), WAIT_MS);
});

test('an executable that cannot run is an exited record with CannotRun, not an exception', async () => {
  const rt = runtime();
  const wait = exits(rt);

  const missing = await rt.start(spec('', { argv: ['k8s4ai-no-such-program', '--flag'], env: { PATH: '/usr/bin:/bin' } }));
  assert.equal(missing.state, 'exited');
  assert.equal(missing.pid, undefined);
  assert.equal(missing.exit?.reason, 'CannotRun');
  assert.equal(missing.exit?.exitCode, 127);
  assert.match(missing.exit?.message ?? '', /k8s4ai-no-such-program.*not found/);
  assert.equal((await wait(missing.uid)).exitCode, 127);

  const absolute = await rt.start(spec('', { argv: [path.join(root, 'nope', 'train.py')] }));
  assert.equal(absolute.exit?.exitCode, 127);
  assert.match(absolute.exit?.message ?? '', /no such file/);

  const notExecutable = path.join(root, 'not-executable.sh');
  fs.writeFileSync(notExecutable, '#!/bin/sh\necho hi\n', { mode: 0o644 });
  const denied = await rt.start(spec('', { argv: [notExecutable] }));
  assert.equal(denied.exit?.reason, 'CannotRun');
  assert.equal(denied.exit?.exitCode, 126);
  assert.match(denied.exit?.message ?? '', /permission denied/);

  const badCwd = await rt.start(spec('console.log(1)', { cwd: path.join(root, 'no-such-dir') }));
  assert.equal(badCwd.exit?.reason, 'CannotRun');
  assert.match(badCwd.exit?.message ?? '', /working directory/);
  assert.equal(rt.get(badCwd.uid)?.state, 'exited');
});

test('resource limits that cannot be applied are reported, never fatal', async () => {
  // No cgroup v2 at all.
  const rt1 = runtime(undefined, { cgroupRoot: path.join(root, 'no-cgroup-here') });
  const w1 = exits(rt1);
  const r1 = await rt1.start(spec('console.log("ran")', { limits: { memoryBytes: 256 * 2 ** 20, cpuMilli: 500 } }));
  started.push(r1);
  assert.equal(r1.limits, 'none');
  assert.match(r1.limitsNote ?? '', /cgroup v2 is not mounted/);
  assert.equal((await w1(r1.uid)).exitCode, 0);

  // Looks like cgroup v2 but creating the instance cgroup fails.
  const fake = fs.mkdtempSync(path.join(root, 'fake-cgroup-'));
  fs.writeFileSync(path.join(fake, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  fs.writeFileSync(path.join(fake, 'cgroup.subtree_control'), 'cpu memory\n');
  fs.writeFileSync(path.join(fake, 'k8s4ai'), 'a file where a directory should be');
  const rt2 = runtime(undefined, { cgroupRoot: fake });
  const w2 = exits(rt2);
  const r2 = await rt2.start(spec('console.log("ran")', { limits: { memoryBytes: 256 * 2 ** 20 } }));
  started.push(r2);
  assert.equal(r2.limits, 'none');
  assert.ok(r2.limitsNote);
  assert.equal((await w2(r2.uid)).exitCode, 0);

  // Everything can be written, but it is not a cgroup file system: the shim's check on
  // /proc/self/cgroup notices that joining did not take.
  fs.rmSync(path.join(fake, 'k8s4ai'));
  fs.mkdirSync(path.join(fake, 'k8s4ai'));
  fs.writeFileSync(path.join(fake, 'k8s4ai', 'cgroup.subtree_control'), 'cpu memory\n');
  const r3 = await rt2.start(spec('console.log("ran")', { limits: { cpuMilli: 250 } }));
  started.push(r3);
  assert.equal(r3.limits, 'none');
  assert.match(r3.limitsNote ?? '', /\/proc\/self\/cgroup/);
  assert.equal(fs.readFileSync(path.join(fake, 'k8s4ai', `${r3.uid}-0`, 'cpu.max'), 'utf8'), '25000 100000');
  assert.equal((await w2(r3.uid)).exitCode, 0);
  assert.match(read(r3.logPath), /ran/);

  // The real mount, whatever this machine offers: either limits apply or a note says why.
  const rt3 = runtime();
  const w3 = exits(rt3);
  const r4 = await rt3.start(spec('console.log("ran")', { limits: { memoryBytes: 512 * 2 ** 20, cpuMilli: 1000 } }));
  started.push(r4);
  assert.ok(r4.limits === 'cgroup' || !!r4.limitsNote, JSON.stringify(r4));
  assert.equal((await w3(r4.uid)).exitCode, 0);
  const noLimits = await rt3.start(spec('1'));
  assert.equal(noLimits.limits, 'none');
  assert.equal(noLimits.limitsNote, undefined);
});

test('recover(): a new runtime adopts a running process, reports one that exited meanwhile, and reports a killed shim as lost', async () => {
  const stateDir = path.join(root, 'recover');
  const first = runtime(stateDir);
  const running = await first.start(spec(`process.on('SIGTERM', () => { console.log('bye'); process.exit(0); }); ${READY}`, { name: 'adopted' }));
  const finishing = await first.start(spec(`process.on('SIGUSR2', () => process.exit(4)); ${READY}`, { name: 'finished' }));
  const orphaned = await first.start(spec(READY, { name: 'orphaned' }));
  const done = await first.start(spec('process.exit(0)', { name: 'done' }));
  started.push(running, finishing, orphaned, done);
  for (const r of [running, finishing, orphaned]) await logHas(r.logPath, 'ready');
  await first.waitForExit(done.uid, WAIT_MS);
  first.remove(done.uid); // acknowledged: not reported again
  first.close(); // the agent goes away; its processes do not

  // While it is away: one finishes, one loses its shim.
  process.kill(finishing.pid!, 'SIGUSR2');
  await waitFor('exit.json of the finished one', () => fs.existsSync(path.join(path.dirname(finishing.logPath), 'exit.json')), WAIT_MS);
  process.kill(orphaned.shimPid, 'SIGKILL');
  await waitFor('shim gone', () => gone(orphaned.shimPid), WAIT_MS);
  assert.ok(isAlive(orphaned.pid, readStat(orphaned.pid!)?.startTime), 'the workload outlives its shim for now');

  const second = runtime(stateDir);
  const wait = exits(second);
  const found = await second.recover();
  const byName = new Map(found.map((r) => [r.name, r]));
  assert.equal(byName.has('done'), false, 'removed instances are not recovered');
  assert.equal(byName.get('adopted')?.state, 'running');
  assert.equal(byName.get('adopted')?.pid, running.pid);
  assert.equal(byName.get('finished')?.state, 'exited');
  assert.equal(byName.get('finished')?.exit?.exitCode, 4);
  assert.equal(byName.get('orphaned')?.state, 'lost');
  assert.equal(byName.get('orphaned')?.exit?.reason, 'Lost');
  await waitFor('the orphaned workload is killed', () => gone(orphaned.pid!), WAIT_MS);

  // The adopted one is fully under the new runtime's control.
  const exit = await second.stop(running.uid, 30);
  assert.equal(exit.exitCode, 0);
  assert.match(read(running.logPath), /bye/);
  assert.equal((await wait(running.uid)).reason, 'Completed');

  // A third runtime sees the lost one as lost again (it left an exit.json saying so) and
  // recovering twice adds nothing.
  const third = runtime(stateDir);
  const again = await third.recover();
  assert.equal(again.find((r) => r.name === 'orphaned')?.state, 'lost');
  assert.equal((await third.recover()).length, again.length);
});

test('the runtime notices a shim killed while it is running, and kills the workload', async () => {
  const rt = runtime();
  const wait = exits(rt);
  const rec = await rt.start(spec(READY));
  started.push(rec);
  await logHas(rec.logPath, 'ready');
  process.kill(rec.shimPid, 'SIGKILL');
  const exit = await wait(rec.uid);
  assert.equal(exit.reason, 'Lost');
  assert.match(exit.message ?? '', /shim/);
  await waitFor('workload gone', () => gone(rec.pid!), WAIT_MS);
  assert.equal(rt.get(rec.uid)?.state, 'lost');
});

test('previous attempt logs, and old attempts are pruned', async () => {
  const rt = runtime(undefined, { keepAttempts: 3 });
  const name = 'restarting';
  const uids: string[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const rec = await rt.start(spec(`console.log("attempt ${attempt}")`, { name, uid: `r-${attempt}`, attempt }));
    started.push(rec);
    uids.push(rec.uid);
    await rt.waitForExit(rec.uid, WAIT_MS);
    assert.equal(rt.logPath('default', name), rec.logPath);
    if (attempt > 0) assert.match(read(rt.logPath('default', name, { previous: true })!), new RegExp(`attempt ${attempt - 1}`));
  }
  assert.match(read(rt.logPath('default', name)!), /attempt 4/);
  const dirs = fs.readdirSync(path.dirname(path.dirname(rt.logPath('default', name)!))).sort();
  assert.deepEqual(dirs, ['2-r-2', '3-r-3', '4-r-4']);
  assert.equal(rt.logPath('default', 'never-ran'), undefined);

  // remove() keeps the log for `previous` but forgets the instance.
  rt.remove('r-4');
  assert.equal(rt.get('r-4'), undefined);
  assert.match(read(rt.logPath('default', name)!), /attempt 4/);
});

test('invalid specs and duplicate uids are rejected; remove() refuses a running instance', async () => {
  const rt = runtime();
  await assert.rejects(rt.start(spec('1', { name: '../escape' })), TypeError);
  await assert.rejects(rt.start(spec('1', { argv: [] })), TypeError);
  const rec = await rt.start(spec(READY, { uid: 'dup' }));
  started.push(rec);
  await assert.rejects(rt.start(spec('1', { uid: 'dup' })), /already exists/);
  assert.throws(() => rt.remove('dup'), /still running/);
  await rt.kill('dup');
  rt.remove('dup');
  assert.equal(rt.get('dup'), undefined);

  // One uid across restarts: allowed once the previous attempt has finished.
  const first = await rt.start(spec('console.log("first")', { name: 'same', uid: 'same', attempt: 0 }));
  await rt.waitForExit('same', WAIT_MS);
  const second = await rt.start(spec('console.log("second")', { name: 'same', uid: 'same', attempt: 1 }));
  started.push(first, second);
  assert.equal(rt.get('same')?.attempt, 1);
  await rt.waitForExit('same', WAIT_MS);
  assert.match(read(rt.logPath('default', 'same', { previous: true })!), /first/);
  const recovered = await runtime(path.dirname(path.dirname(path.dirname(path.dirname(second.logPath))))).recover();
  assert.deepEqual(
    recovered.filter((r) => r.uid === 'same').map((r) => r.attempt),
    [1],
  );
});
