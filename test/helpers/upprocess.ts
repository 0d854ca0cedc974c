// Runs `k8s4ai up` as a real child process on a free port, as a user would, and hands
// back a client for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../../src/client/client.ts';
import { kubeconfigPath } from '../../src/lib/paths.ts';

const BIN = fileURLToPath(new URL('../../bin/k8s4ai.js', import.meta.url));

export interface UpProcess {
  child: ChildProcess;
  url: string;
  client: ApiClient;
  output(): string;
  /** SIGKILL: no chance to flush or close anything. */
  kill9(): Promise<void>;
  /** SIGINT, as Ctrl-C; resolves with the exit code. */
  interrupt(): Promise<number | null>;
}

/**
 * `extraArgs` default `--fleet none`. The agent is off unless `--agent` is among them: the
 * tests of the control plane alone must not start the processes of the gangs they bind.
 */
export async function startUp(dataDir: string, extraArgs: string[] = ['--fleet', 'none']): Promise<UpProcess> {
  const args = extraArgs.includes('--agent') ? extraArgs.filter((a) => a !== '--agent') : [...extraArgs, '--no-agent'];
  const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, K8S4AI_LOG_LEVEL: 'warn' },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`k8s4ai up did not start:\n${out}`)), 60_000);
    const check = () => {
      const m = /control plane is up at (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`k8s4ai up exited with ${code}:\n${out}`));
    });
  });
  const client = ApiClient.fromKubeconfig(kubeconfigPath(dataDir));
  return {
    child,
    url,
    client,
    output: () => out,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
      await client.close().catch(() => undefined);
    },
    async interrupt() {
      child.kill('SIGINT');
      const code = await exited;
      await client.close().catch(() => undefined);
      return code;
    },
  };
}
