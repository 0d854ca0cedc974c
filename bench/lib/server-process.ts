// Runs bench/lib/serve.ts in a child process, so the server and the load generator share
// the machine's cores the way a real client/server pair would and the load generator's
// work is never counted as server time.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readKubeconfig } from '../../src/lib/kubeconfig.ts';

const SERVE = join(dirname(fileURLToPath(import.meta.url)), 'serve.ts');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface ServerProcessOptions {
  storeUrl: string;
  dataDir: string;
  /** Directory for a V8 CPU profile of the server (node --cpu-prof); none when absent. */
  cpuProfileDir?: string;
}

export interface ServerProcess {
  url: string;
  token: string;
  pid: number;
  /** The last lines the server wrote on stderr (for error messages). */
  stderr(): string;
  stop(): Promise<void>;
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  const execArgv = ['--import', 'tsx'];
  if (opts.cpuProfileDir) {
    mkdirSync(opts.cpuProfileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`);
  }
  const child = spawn(process.execPath, [...execArgv, SERVE, opts.storeUrl, opts.dataDir], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
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

  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the server did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(out.slice(0, nl));
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server exited before it was ready (code ${code}, signal ${signal})`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const info = JSON.parse(line) as { url: string; kubeconfig: string; pid: number };
    const kc = readKubeconfig(info.kubeconfig);
    if (!kc.token) throw new Error(`the server's kubeconfig ${info.kubeconfig} holds no token`);
    return { url: info.url, token: kc.token, pid: info.pid, stderr: () => stderr.trim(), stop };
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}${stderr.trim() ? `\n--- server stderr ---\n${stderr.trim()}` : ''}`);
  }
}
