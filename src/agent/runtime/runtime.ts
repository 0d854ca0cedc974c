// The agent's process runtime (the part of a kubelet + containerd-shim that matters here):
// runs each Task member as a real process under its own shim, so that processes survive an
// agent restart, and keeps everything it needs to know on disk:
//
//   <stateDir>/<namespace>/<name>/<attempt>-<uid>/
//     spec.json    argv, cwd, env and metadata (written by the agent; mode 0600, it holds env)
//     state.json   pids and their start times (written by the shim before start() resolves)
//     output.log   the workload's stdout and stderr, appended
//     exit.json    {exitCode, signal, finishedAt[, reason, message]} (written once, atomically)
//     shim.log     the shim's own diagnostics
//
// Exits are detected from exit.json (fs.watch plus a poll), never from child 'exit' events:
// after a restart the shims are not our children. A shim that vanishes without writing
// exit.json (SIGKILLed, OOM-killed) makes its instance Lost; the runtime then SIGKILLs what
// is left of its process group (and cgroup), so the workload does not run on unsupervised.
// There is no way to have the kernel kill the workload when only the shim dies
// (PR_SET_PDEATHSIG is not reachable from Node), so between the shim's death and the next
// poll (pollMs; or the next recover() if the agent is down too) the workload runs on alone.
//
// Run the agent under systemd with KillMode=process (as containerd.service does): the
// default control-group mode would kill every shim, and so every workload, on agent restart.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { isAlive, killGroup } from './procfs.ts';
import { killCgroup, prepareCgroup, removeCgroup, LimitsMode, type CgroupPlacement, type ResourceLimits } from './cgroup.ts';

export { LimitsMode, type ResourceLimits } from './cgroup.ts';

const SHIM = fileURLToPath(new URL('./shim.mjs', import.meta.url));
/** The shim forwards these to the workload; anything else is sent to the workload directly. */
const FORWARDED: ReadonlySet<NodeJS.Signals> = new Set(['SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGHUP', 'SIGQUIT']);
const SHIM_START_TIMEOUT_MS = 30_000;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const ATTEMPT_DIR = /^(\d+)-(.+)$/;

export const ProcessState = { Running: 'running', Exited: 'exited', Lost: 'lost' } as const;
export type ProcessState = (typeof ProcessState)[keyof typeof ProcessState];

export const ExitReason = {
  /** Exit code 0. */
  Completed: 'Completed',
  /** A non-zero exit code. */
  Error: 'Error',
  /** Ended by a signal (exitCode absent, signal set). */
  Signaled: 'Signaled',
  /** The shim disappeared without recording an outcome; whatever remained was killed. */
  Lost: 'Lost',
  /** The workload never ran: 127 executable not found, 126 not executable, 128 bad cwd or the shim failed. */
  CannotRun: 'CannotRun',
} as const;
export type ExitReason = (typeof ExitReason)[keyof typeof ExitReason];

export interface ProcessSpec {
  namespace: string;
  name: string;
  /** Unique per instance (the Task's uid plus whatever makes a restart distinct). */
  uid: string;
  /** Restart count; orders attempts for previous logs. */
  attempt: number;
  /** Executed directly, never through a shell; argv[0] is looked up in env.PATH if it has no '/'. */
  argv: string[];
  /** Default '/'. */
  cwd?: string;
  /** The complete environment: nothing is inherited from the agent. */
  env: Record<string, string>;
  limits?: ResourceLimits;
}

export interface ExitInfo {
  namespace: string;
  name: string;
  uid: string;
  attempt: number;
  exitCode?: number;
  signal?: NodeJS.Signals;
  finishedAt: string;
  reason: ExitReason;
  message?: string;
}

export interface ProcessRecord {
  namespace: string;
  name: string;
  uid: string;
  attempt: number;
  state: ProcessState;
  /** The workload's pid; absent when it never ran (CannotRun). */
  pid?: number;
  shimPid: number;
  startedAt: string;
  logPath: string;
  limits: LimitsMode;
  /** Why limits were requested but not applied. */
  limitsNote?: string;
  /** Present once state is exited or lost. */
  exit?: ExitInfo;
}

export interface ProcessRuntimeOptions {
  stateDir: string;
  logger?: Logger;
  /** Poll interval for exit.json and shim liveness, on top of fs.watch. Default 250. */
  pollMs?: number;
  /** Attempt folders kept per (namespace, name), the new one included. Default 3. */
  keepAttempts?: number;
  /** The cgroup v2 mount. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
}

export type ExitListener = (exit: ExitInfo) => void;

// ---- on-disk formats --------------------------------------------------------------------

interface Meta {
  namespace: string;
  name: string;
  uid: string;
  attempt: number;
  logPath: string;
  limits: LimitsMode;
  limitsNote?: string;
  cgroup?: CgroupPlacement;
}
interface SpecFile {
  meta: Meta;
  argv: string[];
  cwd?: string;
  env: Record<string, string>;
}
interface StateFile extends Meta {
  shimPid: number;
  shimStartTime: number | null;
  pid: number | null;
  pidStartTime: number | null;
  startedAt: string;
}
interface ExitFile {
  exitCode: number | null;
  signal: string | null;
  finishedAt: string;
  reason?: ExitReason;
  message?: string;
}

type Status = 'starting' | ProcessState;

interface Instance {
  dir: string;
  meta: Meta;
  state?: StateFile;
  status: Status;
  /** Resolves when start() has finished (either way); stop/kill/signal wait for it. */
  started: Promise<void>;
  exit?: ExitInfo;
  watcher?: fs.FSWatcher;
  /** Set when the agent SIGKILLs the group, so the shim's silent death is not taken for Lost. */
  killedBy?: string;
  waiters: Array<(e: ExitInfo) => void>;
  fallbackShimPid?: number;
  fallbackStartedAt?: string;
}

// ---- helpers ----------------------------------------------------------------------------

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function writeTmp(file: string, value: unknown, mode: number): string {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return tmp;
}

function writeJsonAtomic(file: string, value: unknown, mode = 0o600): void {
  fs.renameSync(writeTmp(file, value, mode), file);
}

/**
 * Writes exit.json unless one exists (link(2) fails rather than overwrite), and returns
 * the one that is there: a shim's own record always wins over one the agent synthesizes.
 */
function writeExitOnce(dir: string, value: ExitFile): ExitFile {
  const file = path.join(dir, 'exit.json');
  const tmp = writeTmp(file, value, 0o600);
  try {
    fs.linkSync(tmp, file);
    return value;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readJson<ExitFile>(file)!;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function tail(file: string, bytes = 2000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch {
    return '';
  }
}

function toExitInfo(meta: Meta, f: ExitFile): ExitInfo {
  const reason: ExitReason = f.reason ?? (f.signal ? ExitReason.Signaled : f.exitCode === 0 ? ExitReason.Completed : ExitReason.Error);
  const info: ExitInfo = { namespace: meta.namespace, name: meta.name, uid: meta.uid, attempt: meta.attempt, finishedAt: f.finishedAt, reason };
  if (f.exitCode != null) info.exitCode = f.exitCode;
  if (f.signal) info.signal = f.signal as NodeJS.Signals;
  if (f.message) info.message = f.message;
  return info;
}

function validate(spec: ProcessSpec): void {
  for (const key of ['namespace', 'name', 'uid'] as const) {
    // These become path components: no '/', no '..', nothing a shell or a path could misread.
    if (typeof spec[key] !== 'string' || !SAFE_NAME.test(spec[key])) throw new TypeError(`invalid ${key} ${JSON.stringify(spec[key])}`);
  }
  if (!Number.isSafeInteger(spec.attempt) || spec.attempt < 0) throw new TypeError(`invalid attempt ${spec.attempt}`);
  if (!Array.isArray(spec.argv) || spec.argv.length === 0 || !spec.argv[0]) throw new TypeError('argv must name a program');
  for (const a of spec.argv) if (typeof a !== 'string' || a.includes('\0')) throw new TypeError(`invalid argument ${JSON.stringify(a)}`);
  for (const [k, v] of Object.entries(spec.env ?? {})) {
    if (!k || k.includes('=') || k.includes('\0') || typeof v !== 'string' || v.includes('\0')) throw new TypeError(`invalid environment variable ${JSON.stringify(k)}`);
  }
}

// ---- the runtime ------------------------------------------------------------------------

/**
 * Instances are keyed by uid. A uid may be reused for a later attempt once its previous
 * instance has finished (that one is then forgotten, as by remove()); each attempt gets its
 * own folder either way.
 *
 * After an agent restart, recover() reads the state folder: instances whose shim is still
 * alive (pid and start time match) are adopted and watched; those that finished meanwhile
 * come back exited with their exit.json; those whose shim is gone without one come back
 * lost, after whatever is left of their process group and cgroup has been SIGKILLed.
 * Finished instances keep being reported by every recover() until remove()d, so an exit
 * is not forgotten if the agent dies between seeing it and persisting it.
 */
export class ProcessRuntime {
  private readonly stateDir: string;
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly keepAttempts: number;
  private readonly cgroupRoot: string;
  private readonly instances = new Map<string, Instance>();
  private readonly listeners = new Set<ExitListener>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(opts: ProcessRuntimeOptions) {
    this.stateDir = path.resolve(opts.stateDir);
    this.log = opts.logger ?? pino({ enabled: false });
    this.pollMs = opts.pollMs ?? 250;
    this.keepAttempts = Math.max(1, opts.keepAttempts ?? 3);
    this.cgroupRoot = opts.cgroupRoot ?? '/sys/fs/cgroup';
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Starts the workload under a new shim. Resolves once state.json is on disk. Never
   * rejects for a workload that cannot run: that comes back as an exited record with
   * reason CannotRun (and an exit event). Rejects only for an invalid spec or a uid in use.
   */
  async start(spec: ProcessSpec): Promise<ProcessRecord> {
    this.assertOpen();
    validate(spec);
    const previous = this.instances.get(spec.uid);
    if (previous?.status === 'starting' || previous?.status === ProcessState.Running) throw new Error(`instance ${spec.uid} already exists and is running`);
    const dir = path.join(this.stateDir, spec.namespace, spec.name, `${spec.attempt}-${spec.uid}`);
    if (fs.existsSync(dir)) throw new Error(`instance folder ${dir} already exists`);
    if (previous) this.remove(spec.uid);

    let release!: () => void;
    const inst: Instance = {
      dir,
      meta: { namespace: spec.namespace, name: spec.name, uid: spec.uid, attempt: spec.attempt, logPath: path.join(dir, 'output.log'), limits: LimitsMode.None },
      status: 'starting',
      started: new Promise<void>((r) => (release = r)),
      waiters: [],
    };
    // Registered before anything touches the disk, so a concurrent recover() leaves it alone.
    this.instances.set(spec.uid, inst);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.prune(spec.namespace, spec.name, dir);
      const plan = prepareCgroup(this.cgroupRoot, `${spec.uid}-${spec.attempt}`, spec.limits);
      inst.meta.limits = plan.limits;
      if (plan.limitsNote) {
        inst.meta.limitsNote = plan.limitsNote;
        this.log.info({ uid: spec.uid, note: plan.limitsNote }, 'running without resource limits');
      }
      if (plan.cgroup) inst.meta.cgroup = plan.cgroup;
      fs.closeSync(fs.openSync(inst.meta.logPath, 'a', 0o600)); // logs exist even if nothing runs
      const file: SpecFile = { meta: inst.meta, argv: spec.argv, env: spec.env ?? {} };
      if (spec.cwd !== undefined) file.cwd = spec.cwd;
      writeJsonAtomic(path.join(dir, 'spec.json'), file);
      await this.launch(inst);
    } catch (err) {
      this.instances.delete(spec.uid);
      if (inst.meta.cgroup) void removeCgroup(inst.meta.cgroup.dir).catch(() => undefined);
      throw err;
    } finally {
      release();
    }
    return this.toRecord(inst);
  }

  private async launch(inst: Instance): Promise<void> {
    const errFd = fs.openSync(path.join(inst.dir, 'shim.log'), 'a', 0o600);
    let child: ChildProcess | undefined;
    let failure: string | undefined;
    try {
      // Detached: its own session and process group, so it survives the agent, and the
      // group id (= shim pid) names shim + workload together for kill.
      // An empty env keeps NODE_OPTIONS and friends (tsx loaders in dev) out of the shim.
      child = spawn(process.execPath, [SHIM, inst.dir], { detached: true, stdio: ['ignore', 'pipe', errFd], cwd: inst.dir, env: {} });
    } catch (err) {
      failure = `could not start the shim: ${(err as Error).message}`;
    } finally {
      fs.closeSync(errFd);
    }
    if (child) failure = await this.handshake(child);

    if (failure) {
      // Still unreaped, so its pid (and group id) cannot have been reused: safe to kill.
      if (child?.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const shimLog = tail(path.join(inst.dir, 'shim.log'));
      this.log.warn({ uid: inst.meta.uid, failure, shimLog }, 'shim failed to start');
      inst.fallbackShimPid = child?.pid ?? 0;
      inst.fallbackStartedAt = new Date().toISOString();
      const exit = writeExitOnce(inst.dir, {
        exitCode: 128,
        signal: null,
        finishedAt: inst.fallbackStartedAt,
        reason: ExitReason.CannotRun,
        message: shimLog ? `${failure}: ${shimLog.split('\n').slice(-3).join(' | ')}` : failure,
      });
      inst.status = ProcessState.Running;
      this.finalize(inst, exit, true);
      return;
    }

    inst.state = readJson<StateFile>(path.join(inst.dir, 'state.json'));
    if (!inst.state) throw new Error(`shim for ${inst.meta.uid} reported ready without state.json`);
    inst.meta = { ...inst.meta, limits: inst.state.limits };
    if (inst.state.limitsNote) inst.meta.limitsNote = inst.state.limitsNote;
    if (inst.meta.cgroup && !inst.state.cgroup) {
      // The shim could not join it: nothing will ever run there, so do not leave it behind.
      const dir = inst.meta.cgroup.dir;
      delete inst.meta.cgroup;
      void removeCgroup(dir).catch((err) => this.log.debug({ err, dir }, 'could not remove unused cgroup'));
    }
    inst.status = ProcessState.Running;
    child!.unref();
    // A hint only (the shim stops being our child when we restart); exit.json decides.
    child!.on('exit', () => setImmediate(() => this.check(inst)));
    this.log.info({ uid: inst.meta.uid, pid: inst.state.pid, shimPid: inst.state.shimPid }, 'process started');
    this.watch(inst);
    this.check(inst);
  }

  private handshake(child: ChildProcess): Promise<string | undefined> {
    return new Promise((resolve) => {
      let out = '';
      const timer = setTimeout(() => resolve(`the shim did not report within ${SHIM_START_TIMEOUT_MS / 1000}s`), SHIM_START_TIMEOUT_MS);
      const done = (failure: string | undefined) => {
        clearTimeout(timer);
        resolve(failure);
      };
      child.on('error', (err) => done(`could not start the shim: ${err.message}`));
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stdout!.on('close', () => done(out.startsWith('ok') ? undefined : 'the shim exited before starting the workload'));
    });
  }

  /** Re-reads the state folder after an agent restart; see the class comment for what happens to each kind of instance. */
  async recover(): Promise<ProcessRecord[]> {
    this.assertOpen();
    // Newest attempt first, so that of several attempts under one uid the latest is the one kept.
    for (const dir of this.instanceDirs()) {
      try {
        const spec = readJson<SpecFile>(path.join(dir, 'spec.json'));
        // No spec.json: removed (logs kept for `previous`), or never got that far.
        if (!spec || this.instances.has(spec.meta.uid)) continue;
        const state = readJson<StateFile>(path.join(dir, 'state.json'));
        const inst: Instance = { dir, meta: state ?? spec.meta, status: ProcessState.Running, started: Promise.resolve(), waiters: [] };
        if (state) inst.state = state;
        this.instances.set(inst.meta.uid, inst);
        const exit = readJson<ExitFile>(path.join(dir, 'exit.json'));
        if (exit) {
          this.finalize(inst, exit, false);
        } else if (state && isAlive(state.shimPid, state.shimStartTime)) {
          this.log.info({ uid: inst.meta.uid, pid: state.pid, shimPid: state.shimPid }, 'adopted running process');
          this.watch(inst);
        } else {
          this.check(inst, false);
        }
      } catch (err) {
        this.log.warn({ err, dir }, 'cannot recover instance; leaving it alone');
      }
    }
    return this.list();
  }

  /**
   * Called once for every exit this runtime sees happen, CannotRun and Lost included, and
   * never before start() has resolved. Exits that happened while no runtime was watching
   * are not emitted: recover() returns them. Returns an unsubscribe function.
   */
  onExit(listener: ExitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(uid: string): ProcessRecord | undefined {
    const inst = this.instances.get(uid);
    return inst && inst.status !== 'starting' ? this.toRecord(inst) : undefined;
  }

  list(): ProcessRecord[] {
    return [...this.instances.values()].filter((i) => i.status !== 'starting').map((i) => this.toRecord(i));
  }

  /**
   * Delivers a signal to the workload: the usual termination/user signals through the
   * shim (which forwards them), others (SIGKILL, SIGSTOP, ...) straight to the workload pid.
   * False when the instance is unknown or not running; never rejects, so it is safe to
   * fire and forget.
   */
  async signal(uid: string, signal: NodeJS.Signals): Promise<boolean> {
    const inst = this.instances.get(uid);
    if (this.closed || !inst) return false;
    await inst.started;
    const s = inst.state;
    if (inst.status !== ProcessState.Running || !s) return false;
    const [pid, startTime] = FORWARDED.has(signal) ? [s.shimPid, s.shimStartTime] : [s.pid, s.pidStartTime];
    if (!pid || !isAlive(pid, startTime)) return false;
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** SIGTERM, then after graceSeconds SIGKILL to the whole process group. Resolves with the exit. */
  async stop(uid: string, graceSeconds: number): Promise<ExitInfo> {
    this.assertOpen();
    const inst = this.require(uid);
    await inst.started;
    if (inst.exit) return inst.exit;
    await this.signal(uid, 'SIGTERM');
    const exit = await this.waitExit(inst, Math.max(0, graceSeconds) * 1000);
    if (exit) return exit;
    this.log.info({ uid, graceSeconds }, 'grace period over; killing');
    return this.killInstance(inst, `killed after a ${graceSeconds}s grace period`);
  }

  /** Immediate SIGKILL of shim, workload and everything in their group or cgroup. */
  async kill(uid: string): Promise<ExitInfo> {
    this.assertOpen();
    const inst = this.require(uid);
    await inst.started;
    return this.killInstance(inst, 'killed by the agent');
  }

  /** Resolves with the exit, or undefined after timeoutMs. */
  async waitForExit(uid: string, timeoutMs?: number): Promise<ExitInfo | undefined> {
    this.assertOpen();
    const inst = this.require(uid);
    await inst.started;
    return this.waitExit(inst, timeoutMs);
  }

  /**
   * Forgets a finished instance: recover() no longer reports it. Its output.log (and
   * exit.json) stay for `previous` logs until pruned by later attempts. Throws while it runs.
   */
  remove(uid: string): void {
    const inst = this.instances.get(uid);
    if (!inst) return;
    if (inst.status === 'starting' || inst.status === ProcessState.Running) throw new Error(`instance ${uid} is still running; stop or kill it first`);
    inst.watcher?.close();
    // spec.json goes first: it is what recover() looks for, and it holds the environment.
    fs.rmSync(path.join(inst.dir, 'spec.json'), { force: true });
    fs.rmSync(path.join(inst.dir, 'state.json'), { force: true });
    this.instances.delete(uid);
  }

  /** The output.log of the newest attempt of (namespace, name), or of the one before it. */
  logPath(namespace: string, name: string, opts: { previous?: boolean } = {}): string | undefined {
    const dir = this.attemptDirs(namespace, name)[opts.previous ? 1 : 0];
    return dir && path.join(dir, 'output.log');
  }

  /** Stops watching; processes keep running (this is what an agent restart looks like). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const inst of this.instances.values()) {
      inst.watcher?.close();
      inst.watcher = undefined;
    }
  }

  // ---- internals ----------------------------------------------------------------------

  private assertOpen(): void {
    // A closed runtime no longer watches, so anything waiting for an exit would wait forever.
    if (this.closed) throw new Error('ProcessRuntime is closed');
  }

  private require(uid: string): Instance {
    const inst = this.instances.get(uid);
    if (!inst) throw new Error(`unknown instance ${uid}`);
    return inst;
  }

  private toRecord(inst: Instance): ProcessRecord {
    const s = inst.state;
    const rec: ProcessRecord = {
      namespace: inst.meta.namespace,
      name: inst.meta.name,
      uid: inst.meta.uid,
      attempt: inst.meta.attempt,
      state: inst.status === 'starting' ? ProcessState.Running : inst.status,
      shimPid: s?.shimPid ?? inst.fallbackShimPid ?? 0,
      startedAt: s?.startedAt ?? inst.fallbackStartedAt ?? inst.exit?.finishedAt ?? '',
      logPath: inst.meta.logPath,
      limits: inst.meta.limits,
    };
    if (s?.pid) rec.pid = s.pid;
    if (inst.meta.limitsNote) rec.limitsNote = inst.meta.limitsNote;
    if (inst.exit) rec.exit = inst.exit;
    return rec;
  }

  private watch(inst: Instance): void {
    if (this.closed) return;
    try {
      inst.watcher = fs.watch(inst.dir, (_event, file) => {
        if (file === null || file === 'exit.json') this.check(inst);
      });
      inst.watcher.on('error', () => {
        inst.watcher?.close();
        inst.watcher = undefined; // the poll carries on alone
      });
    } catch (err) {
      this.log.debug({ err, dir: inst.dir }, 'fs.watch unavailable; polling only');
    }
    this.timer ??= setInterval(() => this.poll(), this.pollMs);
  }

  private poll(): void {
    let running = 0;
    for (const inst of this.instances.values()) {
      if (inst.status !== ProcessState.Running || !inst.state) continue;
      this.check(inst);
      if (inst.status === ProcessState.Running) running++;
    }
    // Only a runtime with something to watch keeps the event loop alive.
    if (!running) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private check(inst: Instance, emit = true): void {
    if (this.closed || inst.status !== ProcessState.Running) return;
    try {
      const exit = readJson<ExitFile>(path.join(inst.dir, 'exit.json'));
      if (exit) return this.finalize(inst, exit, emit);
      const s = inst.state;
      if (s && isAlive(s.shimPid, s.shimStartTime)) return;
      // The shim writes exit.json just before it exits: look again before calling it lost.
      const late = readJson<ExitFile>(path.join(inst.dir, 'exit.json'));
      if (late) return this.finalize(inst, late, emit);
      const leftovers = this.killRemains(inst);
      const finishedAt = new Date().toISOString();
      const synthesized: ExitFile = inst.killedBy
        ? { exitCode: null, signal: 'SIGKILL', finishedAt, message: inst.killedBy }
        : {
            exitCode: null,
            signal: null,
            finishedAt,
            reason: ExitReason.Lost,
            message: s
              ? `the shim (pid ${s.shimPid}) ended without recording an exit status` + (leftovers ? `; killed ${leftovers} process(es) left in its group` : '')
              : 'the shim never reported that the process started',
          };
      this.finalize(inst, writeExitOnce(inst.dir, synthesized), emit);
    } catch (err) {
      this.log.warn({ err, uid: inst.meta.uid }, 'checking process state failed; will retry');
    }
  }

  /** SIGKILLs the instance's group and cgroup; returns how many processes the group held. */
  private killRemains(inst: Instance): number {
    if (inst.meta.cgroup) killCgroup(inst.meta.cgroup.dir);
    return inst.state ? killGroup(inst.state.shimPid, inst.state.shimStartTime) : 0;
  }

  private async killInstance(inst: Instance, why: string): Promise<ExitInfo> {
    if (inst.exit) return inst.exit;
    inst.killedBy ??= why;
    this.killRemains(inst);
    // The shim dies with the group, so no exit.json will come from it: check() writes one.
    setImmediate(() => this.check(inst));
    return (await this.waitExit(inst))!;
  }

  private waitExit(inst: Instance, timeoutMs?: number): Promise<ExitInfo | undefined> {
    if (inst.exit) return Promise.resolve(inst.exit);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = (e: ExitInfo) => {
        clearTimeout(timer);
        resolve(e);
      };
      inst.waiters.push(waiter);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          inst.waiters = inst.waiters.filter((w) => w !== waiter);
          resolve(undefined);
        }, timeoutMs);
      }
    });
  }

  private finalize(inst: Instance, file: ExitFile, emit: boolean): void {
    if (inst.status !== ProcessState.Running) return;
    const exit = toExitInfo(inst.meta, file);
    inst.exit = exit;
    inst.status = exit.reason === ExitReason.Lost ? ProcessState.Lost : ProcessState.Exited;
    inst.watcher?.close();
    inst.watcher = undefined;
    this.log.info({ ...exit }, 'process finished');
    if (inst.meta.cgroup) {
      const dir = inst.meta.cgroup.dir;
      void removeCgroup(dir).catch((err) => this.log.warn({ err, dir }, 'could not remove cgroup'));
    }
    for (const w of inst.waiters.splice(0)) w(exit);
    // Deferred, so listeners never run inside start()/recover() or before start() resolves.
    if (emit) {
      setImmediate(() => {
        for (const l of this.listeners) {
          try {
            l(exit);
          } catch (err) {
            this.log.error({ err, uid: exit.uid }, 'exit listener threw');
          }
        }
      });
    }
  }

  private instanceDirs(): string[] {
    const out: string[] = [];
    for (const ns of subdirs(this.stateDir)) for (const name of subdirs(ns)) out.push(...this.attemptDirsIn(name));
    return out;
  }

  /** Attempt folders of (namespace, name), newest first. */
  private attemptDirs(namespace: string, name: string): string[] {
    if (!SAFE_NAME.test(namespace) || !SAFE_NAME.test(name)) return [];
    return this.attemptDirsIn(path.join(this.stateDir, namespace, name));
  }

  /**
   * Newest first, by when each instance was made: a gang deleted and made again under the
   * same name counts its attempts from 0 again, so the attempt number only breaks ties.
   */
  private attemptDirsIn(parent: string): string[] {
    const found: Array<{ dir: string; attempt: number; created: number }> = [];
    for (const dir of subdirs(parent)) {
      const m = ATTEMPT_DIR.exec(path.basename(dir));
      if (!m) continue;
      let created = 0;
      try {
        // The folder's birth time (statx), where the filesystem keeps one; else when its log began.
        const st = fs.statSync(dir);
        created = st.birthtimeMs || fs.statSync(path.join(dir, 'output.log')).birthtimeMs || st.ctimeMs;
      } catch {
        // ordering falls back to the attempt number alone
      }
      found.push({ dir, attempt: Number(m[1]), created });
    }
    return found.sort((a, b) => b.created - a.created || b.attempt - a.attempt).map((f) => f.dir);
  }


  /** Drops attempt folders beyond keepAttempts; never one that may still be running. */
  private prune(namespace: string, name: string, current: string): void {
    const others = this.attemptDirs(namespace, name).filter((d) => d !== current);
    for (const dir of others.slice(this.keepAttempts - 1)) {
      const known = [...this.instances.values()].find((i) => i.dir === dir);
      if (known && (known.status === 'starting' || known.status === ProcessState.Running)) continue;
      if (!known && fs.existsSync(path.join(dir, 'spec.json')) && !fs.existsSync(path.join(dir, 'exit.json'))) continue; // not recovered yet
      try {
        fs.rmSync(dir, { recursive: true, force: true });
        if (known) this.instances.delete(known.meta.uid);
      } catch (err) {
        this.log.warn({ err, dir }, 'could not remove old attempt');
      }
    }
  }
}

function subdirs(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(dir, e.name));
  } catch {
    return [];
  }
}
