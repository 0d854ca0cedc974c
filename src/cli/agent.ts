// `k8s4ai agent`: the per-machine agent as its own process, for machines other than the
// one running `up`, or for `up --no-agent`. It finds the API server through the kubeconfig
// and shares the log-proxy secret with the control plane through a file.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../agent/agent.ts';
import { ApiClient } from '../client/client.ts';
import { createLogger } from '../lib/logger.ts';
import { dataDir, agentProxyTokenPath } from '../lib/paths.ts';
import { readOrCreateSecret } from '../lib/secret.ts';
import { kubeconfigFor, type GlobalOptions } from './context.ts';
import { CliError } from './errors.ts';

export interface AgentCommandOptions extends GlobalOptions {
  nodeName?: string;
  /** commander's --no-node. */
  node?: boolean;
  topologyDomain?: string;
  serveSimulated?: boolean;
  stateDir?: string;
  address: string;
  port: string;
  heartbeat: string;
  proxyTokenFile?: string;
  logLevel?: string;
  logFile?: string;
}

export async function agentCommand(opts: AgentCommandOptions): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0-65535, not "${opts.port}"`);
  const heartbeatSeconds = Number(opts.heartbeat);
  if (!(heartbeatSeconds > 0)) throw new CliError(`--heartbeat must be a number of seconds > 0, not "${opts.heartbeat}"`);
  const dir = dataDir(opts.dataDir);
  const logger = createLogger({ level: opts.logLevel ?? 'info', file: opts.logFile ?? join(dir, 'agent.log') });
  const agent = new Agent({
    client: ApiClient.fromKubeconfig(kubeconfigFor(opts), opts.context),
    logger,
    stateDir: opts.stateDir ?? join(dir, 'agent'),
    nodeName: opts.node === false ? undefined : (opts.nodeName ?? hostname()),
    topologyDomain: opts.topologyDomain,
    serveSimulated: opts.serveSimulated ?? false,
    heartbeatSeconds,
    address: opts.address,
    port,
    proxyToken: readOrCreateSecret(opts.proxyTokenFile ?? agentProxyTokenPath(dir)),
  });
  await agent.start();
  process.stdout.write(`k8s4ai agent is up: logs endpoint ${agent.endpoint}; Ctrl-C stops it (running Tasks keep running and are found again on restart)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => void agent.stop().then(() => {
      logger.flush();
      resolve();
    });
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
