// A benchmark's helper process: started, awaited until it prints that it is ready, stopped
// with SIGTERM (SIGKILL after a grace period), and never left behind when the benchmark
// exits. Its last stderr lines go into the errors it causes.
import { spawn, type ChildProcess } from 'node:child_process';

const STOP_TIMEOUT_MS = 10_000;

export interface ChildOptions {
  /** For messages: "the server", "router". */
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  /** Ready when stdout matches this (group 1, if any, is returned). */
  ready: RegExp;
  startTimeoutMs?: number;
}

export interface StartedChild {
  child: ChildProcess;
  pid: number;
  /** The match of `ready`. */
  match: RegExpExecArray;
  /** The last lines the child wrote on stderr. */
  stderr(): string;
  stop(): Promise<void>;
}

export const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

export async function startChild(opts: ChildOptions): Promise<StartedChild> {
  // NODE_OPTIONS would carry this process's flags (a debugger, a profiler) into the child.
  const child = spawn(opts.command, opts.args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-8000);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= new Promise<void>((resolve) => {
      process.removeListener('exit', killOnExit);
      if (exited(child)) return resolve();
      const hard = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      child.once('exit', () => {
        clearTimeout(hard);
        resolve();
      });
      child.kill('SIGTERM');
    }));
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  try {
    const match = await new Promise<RegExpExecArray>((resolve, reject) => {
      let out = '';
      let seen = false;
      const timer = setTimeout(() => reject(new Error(`${opts.name} did not start within ${timeoutMs / 1000} s`)), timeoutMs);
      child.stdout!.on('data', (c: Buffer) => {
        // Read on after the ready line (a full pipe would block the child), keeping nothing.
        if (seen) return;
        out += c.toString();
        const m = opts.ready.exec(out);
        if (m) {
          seen = true;
          clearTimeout(timer);
          resolve(m);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${opts.name} exited before it was ready (code ${code}, signal ${signal})`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return { child, pid: child.pid!, match, stderr: () => stderr.trim(), stop };
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}${stderr.trim() ? `\n--- ${opts.name} stderr ---\n${stderr.trim()}` : ''}`);
  }
}
