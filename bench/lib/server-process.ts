// Runs bench/lib/serve.ts in a child process, so the server and the load generator share
// the machine's cores the way a real client/server pair would and the load generator's
// work is never counted as server time.

import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readKubeconfig } from '../../src/lib/kubeconfig.ts';
import { startChild } from './child.ts';

const SERVE = join(dirname(fileURLToPath(import.meta.url)), 'serve.ts');
const START_TIMEOUT_MS = 30_000;

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

export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  const execArgv = ['--import', 'tsx'];
  if (opts.cpuProfileDir) {
    mkdirSync(opts.cpuProfileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`);
  }
  // serve.ts prints one JSON line when it is up.
  const server = await startChild({ name: 'the server', command: process.execPath, args: [...execArgv, SERVE, opts.storeUrl, opts.dataDir], ready: /^(.*)\n/, startTimeoutMs: START_TIMEOUT_MS });
  try {
    const info = JSON.parse(server.match[1]!) as { url: string; kubeconfig: string; pid: number };
    const kc = readKubeconfig(info.kubeconfig);
    if (!kc.token) throw new Error(`the server's kubeconfig ${info.kubeconfig} holds no token`);
    return { url: info.url, token: kc.token, pid: info.pid, stderr: server.stderr, stop: server.stop };
  } catch (err) {
    await server.stop();
    throw new Error(`${(err as Error).message}${server.stderr() ? `\n--- server stderr ---\n${server.stderr()}` : ''}`);
  }
}
