// The per-process shim (the role containerd-shim plays): started detached by the agent's
// ProcessRuntime, it owns one workload for its whole life so that the workload outlives
// agent restarts, and leaves its outcome on disk (exit.json) for whichever agent is running
// when it ends. Plain JavaScript with no imports beyond node: so it starts in tens of ms.
//
// Usage: node shim.mjs <instance dir>. The dir holds spec.json (written by the agent).
// Protocol with the agent: state.json is written (atomically) once the workload has been
// spawned, or exit.json + state.json if it could not be; then one line "ok" on stdout, and
// stdout is closed. The shim's own diagnostics go to stderr, which the agent points at
// shim.log. It is its own process-group leader (spawned detached) and the workload stays in
// that group, so a SIGKILL of the group takes both.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: shim.mjs <instance dir>\n');
  process.exit(2);
}
const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGHUP', 'SIGQUIT'];

/** @type {import('node:child_process').ChildProcess | undefined} */
let child;
/** Signals that arrive before the workload exists are replayed to it, not lost. */
const pending = [];
// Installed first: a SIGTERM during start-up must not kill the shim by default action and
// leave a workload behind without anyone to record its exit.
for (const sig of FORWARDED) {
  process.on(sig, () => {
    if (child?.pid) forward(sig);
    else pending.push(sig);
  });
}
// The agent may be gone by the time we write the handshake; EPIPE must not kill us.
process.stdout.on('error', () => {});

function log(msg) {
  process.stderr.write(`${new Date().toISOString()} shim[${process.pid}] ${msg}\n`);
}

function forward(sig) {
  try {
    child.kill(sig);
  } catch (err) {
    log(`forwarding ${sig} failed: ${err.message}`);
  }
}

function writeAtomic(name, value) {
  const target = path.join(dir, name);
  const tmp = `${target}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot): with the pid it names one process for good. */
function startTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses; everything after the last ')' is fixed-format.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return null;
  }
}

function handshake() {
  process.stdout.end('ok\n');
}

function cgroupOf(pid) {
  try {
    const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
    return line ? line.slice(3) : null;
  } catch {
    return null;
  }
}

/**
 * Moves the shim into the instance's cgroup so that the workload is born there (joining
 * after spawn would leave a window in which it, or children it forks, run unlimited).
 * Returns the cgroup to move back to, or an error message when limits cannot be applied.
 */
function joinCgroup(cg) {
  const original = cgroupOf('self');
  try {
    fs.writeFileSync(path.join(cg.dir, 'cgroup.procs'), String(process.pid));
  } catch (err) {
    return { error: `could not join ${cg.dir}: ${err.message}` };
  }
  // Verify with the kernel: a write that "succeeded" on something that is not a cgroup
  // file system limits nothing.
  const now = cgroupOf('self');
  if (now !== cg.expect) return { error: `joined ${cg.dir} but /proc/self/cgroup says ${now ?? 'nothing'} (expected ${cg.expect})` };
  return { original };
}

/** Back out of the workload's cgroup, so the shim neither counts against its limits nor blocks removal. */
function leaveCgroup(mount, original) {
  if (original == null) return;
  try {
    fs.writeFileSync(path.join(mount, original, 'cgroup.procs'), String(process.pid));
  } catch (err) {
    log(`could not move back to ${original}: ${err.message}`);
  }
}

/** Processes the workload left behind in our group; they go when it does, as in a container. */
function killLeftovers() {
  let entries;
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return;
  }
  for (const e of entries) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[2]) === process.pid && rest[0] !== 'Z') process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

function cannotRun(spec, base, exitCode, message) {
  log(`cannot run: ${message}`);
  const finishedAt = new Date().toISOString();
  writeAtomic('exit.json', { exitCode, signal: null, finishedAt, reason: 'CannotRun', message });
  writeAtomic('state.json', { ...base, pid: null, pidStartTime: null, startedAt: finishedAt });
  handshake();
}

function execMessage(argv0, code, env) {
  const searched = !argv0.includes('/');
  if (code === 'ENOENT') return searched ? `exec: "${argv0}": executable file not found in $PATH${env.PATH ? '' : ' (PATH is not set)'}` : `exec: "${argv0}": no such file or directory`;
  if (code === 'EACCES') return `exec: "${argv0}": permission denied`;
  return `exec: "${argv0}": ${code}`;
}

function main() {
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'spec.json'), 'utf8'));
  const base = {
    ...spec.meta,
    shimPid: process.pid,
    shimStartTime: startTime(process.pid),
  };
  const cwd = spec.cwd ?? '/';
  let cwdOk = false;
  try {
    cwdOk = fs.statSync(cwd).isDirectory();
  } catch {
    // reported below
  }
  if (!cwdOk) return cannotRun(spec, base, 128, `working directory "${cwd}" does not exist or is not a directory`);

  const out = fs.openSync(path.join(dir, 'output.log'), 'a', 0o600);
  let joined = null;
  if (spec.meta.cgroup) {
    joined = joinCgroup(spec.meta.cgroup);
    if (joined.error) {
      log(joined.error);
      base.limits = 'none';
      base.limitsNote = joined.error;
      delete base.cgroup;
    }
  }

  const [file, ...args] = spec.argv;
  try {
    // No shell, and not detached: the workload stays in our process group.
    child = spawn(file, args, { cwd, env: spec.env, stdio: ['ignore', out, out] });
  } catch (err) {
    if (joined && !joined.error) leaveCgroup(spec.meta.cgroup.mount, joined.original);
    return cannotRun(spec, base, 126, `exec: "${file}": ${err.message}`);
  }
  if (joined && !joined.error) leaveCgroup(spec.meta.cgroup.mount, joined.original);
  fs.closeSync(out);

  if (child.pid === undefined) {
    // spawn failures (ENOENT, EACCES) are reported on 'error', without a pid.
    child.once('error', (err) => {
      const code = err.code === 'ENOENT' ? 127 : 126;
      cannotRun(spec, base, code, execMessage(file, err.code ?? err.message, spec.env));
      process.exit(0);
    });
    return;
  }
  // Read synchronously, right after spawn: the child cannot be reaped (and its /proc entry
  // vanish) before our event loop handles SIGCHLD.
  const pidStartTime = startTime(child.pid);
  writeAtomic('state.json', { ...base, pid: child.pid, pidStartTime, startedAt: new Date().toISOString() });
  log(`started pid ${child.pid}: ${JSON.stringify(spec.argv)}`);
  handshake();
  child.on('error', (err) => log(`workload error: ${err.message}`));
  for (const sig of pending.splice(0)) forward(sig);

  child.once('exit', (exitCode, signal) => {
    log(`pid ${child.pid} exited: code ${exitCode} signal ${signal}`);
    killLeftovers();
    writeAtomic('exit.json', { exitCode, signal, finishedAt: new Date().toISOString() });
    process.exit(0);
  });
}

try {
  main();
} catch (err) {
  log(`shim failed: ${err.stack ?? err}`);
  // Nobody would record this workload's exit: better gone than an unsupervised orphan.
  if (child?.pid) child.kill('SIGKILL');
  process.exit(1);
}
