// Runs the real kubectl (no shell) against a test control plane. Each call gets the
// given kubeconfig and HOME (kubectl caches discovery under ~/.kube/cache, so a fresh
// HOME per test file keeps caches from other runs out) and a timeout.
//
//   const r = await kubectl(['get', 'ns'], { kubeconfig, home });
//   assert.equal(r.code, 0, r.stderr);

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export const KUBECTL = process.env.K8S4AI_KUBECTL ?? '/usr/bin/kubectl';
const DEFAULT_TIMEOUT_MS = 30_000;

export interface KubectlOptions {
  kubeconfig: string;
  /** HOME for kubectl (its discovery cache lives under it); usually the test's data dir. */
  home: string;
  /** Written to stdin (for `-f -`). */
  input?: string;
  /** Kill kubectl after this long; default 30 s. */
  timeoutMs?: number;
  cwd?: string;
}

export interface KubectlResult {
  /** Exit code; null when killed (timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

function env(home: string): NodeJS.ProcessEnv {
  // Only what kubectl needs: no KUBECONFIG or proxy settings from the caller's environment.
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C', NO_PROXY: '127.0.0.1,localhost', KUBECTL_COMMAND_HEADERS: 'false' };
}

export function kubectl(args: string[], opts: KubectlOptions): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      KUBECTL,
      ['--kubeconfig', opts.kubeconfig, ...args],
      { env: env(opts.home), cwd: opts.cwd, timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string | null; killed?: boolean }) | null;
        if (e && typeof e.code === 'string') return reject(e); // kubectl missing, etc.
        resolve({ code: e ? (e.killed ? null : ((e.code as number | null | undefined) ?? null)) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Like kubectl(), but throws with kubectl's output when it does not exit 0. */
export async function kubectlOk(args: string[], opts: KubectlOptions): Promise<string> {
  const r = await kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** A long-running kubectl (`get -w`): its output so far, a way to wait for some of it, and kill(). */
export interface KubectlProcess {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches, rejects after timeoutMs or if kubectl exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Kills kubectl and waits for it to exit. */
  kill(): Promise<void>;
}

export function spawnKubectl(args: string[], opts: KubectlOptions): KubectlProcess {
  const child = spawn(KUBECTL, ['--kubeconfig', opts.kubeconfig, ...args], { env: env(opts.home), cwd: opts.cwd, stdio: 'pipe' });
  let out = '';
  let err = '';
  let exited = false;
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((l) => l());
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    notify();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exit = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      notify();
      resolve();
    });
  });
  child.stdin.end(opts.input);
  const safety = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  safety.unref();
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) {
            done();
            resolve(out);
          } else if (exited) {
            done();
            reject(new Error(`kubectl exited before its output matched ${String(pattern)}\nstdout: ${out}\nstderr: ${err}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`kubectl output did not match ${String(pattern)} within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async kill() {
      clearTimeout(safety);
      if (!exited) child.kill('SIGTERM');
      await exit;
    },
  };
}
