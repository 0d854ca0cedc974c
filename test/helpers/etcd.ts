// Starts a throwaway single-member etcd for tests and benchmarks: free loopback ports, a
// temporary data directory, and a stop() that kills it and removes the directory.
//
//   const etcd = await startEtcd();   // etcd.endpoint is 'http://127.0.0.1:PORT'
//   ...
//   await etcd.stop();
//
// The binary is /usr/bin/etcd unless K8S4AI_ETCD_BIN names another.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/lib/net.ts';

export interface RunningEtcd {
  /** Client URL, e.g. http://127.0.0.1:41234. */
  endpoint: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 50;

function etcdBinary(): string {
  const bin = process.env.K8S4AI_ETCD_BIN || '/usr/bin/etcd';
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `etcd binary not found at ${bin}: install it with \`apt-get install etcd-server\` ` +
        `or set K8S4AI_ETCD_BIN to an etcd 3.4+ binary`,
    );
  }
  return bin;
}


const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function isHealthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (hasExited(child)) resolve();
    else child.once('exit', () => resolve());
  });
}

export async function startEtcd(): Promise<RunningEtcd> {
  const bin = etcdBinary();
  const dataDir = mkdtempSync(join(tmpdir(), 'k8s4ai-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    bin,
    [
      '--name=test',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=test=${peer}`,
      '--logger=zap',
      '--log-level=error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });

  // Don't leave an etcd behind if the test process exits without calling stop().
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      process.removeListener('exit', killOnExit);
      child.kill('SIGTERM');
      await exited(child);
      rmSync(dataDir, { recursive: true, force: true });
    })());

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await isHealthy(endpoint))) {
    if (hasExited(child) || Date.now() > deadline) {
      await stop();
      throw new Error(`etcd did not become ready on ${endpoint} (exit code ${child.exitCode}): ${stderr.trim()}`);
    }
    await delay(READY_POLL_MS);
  }
  return { endpoint, stop };
}
